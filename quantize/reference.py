"""The paper's score in torch, straight from the Brevitas (or float) model: the reference that
``snapseal.daemon.scoring.likelihood`` (numpy, THE definition) is tested against.

    log RP(x) = logsumexp_l log N(x | decoder(mu_z + sigma_z * eps_l)) - log L

with the bundle's fixed epsilon table, in float64 after the model's float32 outputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from snapseal.daemon.scoring.likelihood import HALF_LOG_2PI, LOG_SIGMA_FLOOR
from snapseal.quantize.model import VAE


def _log_likelihood(x01: torch.Tensor, out: torch.Tensor, log_sigma_floor: float) -> torch.Tensor:
    mu = torch.sigmoid(out[:, 0].double())
    log_sigma = torch.clamp(out[:, 1].double(), min=log_sigma_floor)
    z = (x01 - mu) * torch.exp(-log_sigma)
    return (-HALF_LOG_2PI - log_sigma - 0.5 * z * z).flatten(1).sum(1)


@torch.no_grad()
def reference_log_rp(vae: VAE, crops: np.ndarray, eps: np.ndarray, log_sigma_floor: float = LOG_SIGMA_FLOOR) -> np.ndarray:
    """crops N x 64 x 64 uint8, eps L x D -> log RP per crop (N float64)."""
    vae = vae.eval()
    pixels = torch.from_numpy(crops.astype(np.float32)).unsqueeze(1)
    x01 = torch.from_numpy(crops.astype(np.float64) / 255.0)
    mu_z, log_sigma_z = vae.encoder(pixels)
    sigma_z = torch.exp(log_sigma_z)
    per_sample = []
    for row in torch.from_numpy(np.asarray(eps, dtype=np.float32)):
        z = mu_z + sigma_z * row.view(1, -1, 1, 1)
        per_sample.append(_log_likelihood(x01, vae.decoder(z), log_sigma_floor))
    stacked = torch.stack(per_sample, dim=1)
    return (torch.logsumexp(stacked, dim=1) - math.log(len(eps))).numpy()


@torch.no_grad()
def reference_log_likelihood_at_mean(vae: VAE, crops: np.ndarray, log_sigma_floor: float = LOG_SIGMA_FLOOR) -> np.ndarray:
    vae = vae.eval()
    pixels = torch.from_numpy(crops.astype(np.float32)).unsqueeze(1)
    x01 = torch.from_numpy(crops.astype(np.float64) / 255.0)
    _, _, out = vae.forward_at_mean(pixels)
    return _log_likelihood(x01, out, log_sigma_floor).numpy()
