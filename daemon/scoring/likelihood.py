"""The paper's score, log RP(x), in numpy: THE definition (the torch reference is tested against it).

RP(x) = 1/L sum_l N(x | mu_x^l, sigma_x^l),  z^l = mu_z + sigma_z * eps^l,  eps^l fixed (the
bundle's epsilon table, L x D), so one crop gets one score everywhere. log RP is computed with
logsumexp, in float64. Pixels x are the crop's uint8 values / 255.

The decoder outputs raw values; the host turns them into a pixel distribution:
mu_x = sigmoid(raw[0]), log_sigma_x = max(raw[1], log_sigma_floor). The floor (default: one grey
level, log(1/255)) keeps a flat crop from scoring without bound; it is a bundle parameter.
Python 3.10 + numpy 1.x compatible; no torch.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from snapseal.daemon.accel.base import Latent, PixelDist
from snapseal.daemon.errors import SnapsealError

LOG_SIGMA_FLOOR = math.log(1.0 / 255.0)  # sigma_x >= one grey level
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
DEFAULT_EPSILON_SAMPLES = 10  # the paper's L
DEFAULT_EPSILON_SEED = 20210209


def epsilon_table(latent_dim: int, samples: int = DEFAULT_EPSILON_SAMPLES, seed: int = DEFAULT_EPSILON_SEED) -> np.ndarray:
    """The fixed standard-normal table (samples x latent_dim, float32) stored in a bundle."""
    if latent_dim <= 0 or samples <= 0:
        raise SnapsealError(f"epsilon table: latent_dim and samples must be positive, got {latent_dim}, {samples}")
    rng = np.random.Generator(np.random.PCG64(seed))  # same stream on numpy 1.x and 2.x
    return rng.standard_normal((samples, latent_dim)).astype(np.float32)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically stable logistic, float32 in -> float32 out."""
    logits = np.asarray(logits, dtype=np.float32)
    out = np.empty_like(logits)
    pos = logits >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-logits[pos]))
    e = np.exp(logits[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def pixel_dist_from_output(raw: np.ndarray, log_sigma_floor: float = LOG_SIGMA_FLOOR) -> PixelDist:
    """Decoder output N x 2 x 64 x 64 (mu logits, log sigma raw) -> PixelDist (pixels in [0, 1])."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 4 or raw.shape[1] != 2:
        raise SnapsealError(f"decoder output must be N x 2 x H x W, got shape {raw.shape}")
    mu = sigmoid(raw[:, 0])
    log_sigma = np.maximum(raw[:, 1], np.float32(log_sigma_floor)).astype(np.float32)
    return PixelDist(mu=mu, log_sigma=log_sigma)


def crops_to_unit(crops: np.ndarray) -> np.ndarray:
    """N x H x W uint8 -> float64 in [0, 1]."""
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 3:
        raise SnapsealError(f"crops must be N x H x W uint8, got {crops.dtype} {crops.shape}")
    return crops.astype(np.float64) / 255.0


def gaussian_log_likelihood(crops: np.ndarray, dist: PixelDist) -> np.ndarray:
    """log N(x | mu_x, sigma_x) summed over pixels: N float64 (nats)."""
    x = crops_to_unit(crops)
    mu = np.asarray(dist.mu, dtype=np.float64)
    log_sigma = np.asarray(dist.log_sigma, dtype=np.float64)
    if mu.shape != x.shape or log_sigma.shape != x.shape:
        raise SnapsealError(f"pixel distribution shape {mu.shape} does not match crops {x.shape}")
    z = (x - mu) * np.exp(-log_sigma)
    per_pixel = -HALF_LOG_2PI - log_sigma - 0.5 * z * z
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(axis=1)


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    peak = np.max(a, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out = np.log(np.sum(np.exp(a - peak), axis=axis, keepdims=True)) + peak
    return np.squeeze(out, axis=axis)


def sample_latents(latent: Latent, eps_row: np.ndarray) -> np.ndarray:
    """z = mu_z + sigma_z * eps for one row of the epsilon table: N x D float32."""
    mu = np.asarray(latent.mu, dtype=np.float32)
    sigma = np.exp(np.asarray(latent.log_sigma, dtype=np.float32))
    eps_row = np.asarray(eps_row, dtype=np.float32)
    if eps_row.shape != (mu.shape[1],):
        raise SnapsealError(f"epsilon row has shape {eps_row.shape}, latent dimension is {mu.shape[1]}")
    return (mu + sigma * eps_row[None, :]).astype(np.float32)


def log_rp(
    crops: np.ndarray,
    latent: Latent,
    decode_fn: Callable[[np.ndarray], PixelDist],
    eps: np.ndarray,
) -> np.ndarray:
    """The paper's score: log (1/L sum_l N(x | mu_x^l, sigma_x^l)), N float64.

    decode_fn maps N x D float32 latents to a PixelDist (e.g. ``Accelerator.decode``); eps is the
    bundle's L x D epsilon table.
    """
    eps = np.asarray(eps, dtype=np.float32)
    if eps.ndim != 2 or eps.shape[0] < 1:
        raise SnapsealError(f"epsilon table must be L x D, got shape {eps.shape}")
    per_sample = np.stack(
        [gaussian_log_likelihood(crops, decode_fn(sample_latents(latent, eps_row))) for eps_row in eps], axis=1
    )
    return logsumexp(per_sample, axis=1) - math.log(eps.shape[0])


def log_likelihood_at_mean(crops: np.ndarray, dist_at_mean: PixelDist) -> np.ndarray:
    """The single-pass estimator: log N(x | mu_x, sigma_x) decoded at z = mu_z (one FPGA pass)."""
    return gaussian_log_likelihood(crops, dist_at_mean)


def kl_divergence(latent: Latent) -> np.ndarray:
    """KL(q(z|x) || N(0, I)) per crop, N float64 (nats)."""
    mu = np.asarray(latent.mu, dtype=np.float64)
    log_sigma = np.asarray(latent.log_sigma, dtype=np.float64)
    return 0.5 * np.sum(mu * mu + np.exp(2.0 * log_sigma) - 1.0 - 2.0 * log_sigma, axis=1)
