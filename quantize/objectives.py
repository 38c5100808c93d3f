"""Training objectives, by name: ``OBJECTIVES["elbo"]`` is the paper's.

An objective is a callable ``(model, pixels, step) -> ObjectiveResult``: ``pixels`` is a batch
N x 1 x 64 x 64 float tensor of raw grey levels 0..255, ``step`` tells where training is (for
warm-ups). To add one, write a function with that signature and register it:

    @register("my_objective")
    def my_objective(model, pixels, step): ...

``snapseal-train --objective NAME`` picks it. The host-side pixel transform (sigmoid, log-sigma
floor) is shared with the numpy score (``snapseal.daemon.scoring.likelihood``) so training
optimises exactly what the daemon scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.likelihood import HALF_LOG_2PI, LOG_SIGMA_FLOOR


@dataclass(frozen=True)
class TrainStep:
    """Where training is: objectives use it for warm-ups and schedules."""

    step: int  # optimiser steps done so far (0-based)
    total_steps: int
    kl_warmup_steps: int


@dataclass
class ObjectiveResult:
    loss: torch.Tensor  # scalar to minimise
    logs: dict[str, float] = field(default_factory=dict)  # shown on the progress bar


class Objective(Protocol):
    def __call__(self, model: torch.nn.Module, pixels: torch.Tensor, step: TrainStep) -> ObjectiveResult: ...


OBJECTIVES: dict[str, Objective] = {}


def register(name: str) -> Callable[[Objective], Objective]:
    def wrap(fn: Objective) -> Objective:
        OBJECTIVES[name] = fn
        return fn

    return wrap


def get_objective(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise SnapsealError(f"unknown objective {name!r}; known: {', '.join(sorted(OBJECTIVES))}") from None


# ---------------------------------------------------------------------------------------------
# Pieces (torch mirrors of the numpy definitions in snapseal.daemon.scoring.likelihood)


def pixel_dist(decoder_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N x 2 x H x W raw -> (mu_x in [0,1], log_sigma_x floored), each N x H x W."""
    return torch.sigmoid(decoder_output[:, 0]), torch.clamp(decoder_output[:, 1], min=LOG_SIGMA_FLOOR)


def gaussian_log_likelihood(pixels: torch.Tensor, decoder_output: torch.Tensor) -> torch.Tensor:
    """Sum over pixels of log N(x/255 | mu_x, sigma_x): N values."""
    x = pixels[:, 0] / 255.0
    mu, log_sigma = pixel_dist(decoder_output)
    z = (x - mu) * torch.exp(-log_sigma)
    return (-HALF_LOG_2PI - log_sigma - 0.5 * z * z).flatten(1).sum(1)


def kl_to_standard_normal(mu_z: torch.Tensor, log_sigma_z: torch.Tensor) -> torch.Tensor:
    mu, ls = mu_z.flatten(1), log_sigma_z.flatten(1)
    return 0.5 * (mu * mu + torch.exp(2 * ls) - 1 - 2 * ls).sum(1)


def kl_weight(step: TrainStep) -> float:
    """Linear KL warm-up from 0 to 1 over kl_warmup_steps (Bowman et al. 2016)."""
    if step.kl_warmup_steps <= 0:
        return 1.0
    return min(1.0, (step.step + 1) / step.kl_warmup_steps)


@register("elbo")
def elbo(model: torch.nn.Module, pixels: torch.Tensor, step: TrainStep) -> ObjectiveResult:
    """The paper's objective: negative ELBO, Gaussian likelihood with learned per-pixel sigma.

    Loss per crop = -log p(x|z) + beta * KL(q(z|x) || N(0, I)), beta warming up to 1, averaged
    over the batch and reported per pixel (nats) on the bar.
    """
    mu_z, log_sigma_z, out = model(pixels)
    rec = gaussian_log_likelihood(pixels, out)
    kl = kl_to_standard_normal(mu_z, log_sigma_z)
    beta = kl_weight(step)
    loss = (-rec + beta * kl).mean()
    n_pix = pixels[0].numel()
    return ObjectiveResult(
        loss=loss,
        logs={"nll_px": float(-rec.detach().mean()) / n_pix, "kl": float(kl.detach().mean()), "beta": beta},
    )


NEGATIVE_MARGIN_NATS_PX = 0.1  # clean must beat its degraded copy by this much per pixel


def synthetic_negatives(pixels: torch.Tensor) -> torch.Tensor:
    """Degraded copies of a batch (raw grey levels, N x 1 x 64 x 64), torch RNG: a third
    Gaussian-blurred (sigma 1-3 px), a third with additive noise (std 4-20), a third darkened
    (gain 0.2-0.6, gamma 1.5). Only these three kinds: motion blur, JPEG, downscale, occlusion
    and off-centre stay unseen, so the degradation-ranking test measures generalisation."""
    n = pixels.shape[0]
    group = torch.arange(n) % 3
    out = pixels.clone()
    blur = group == 0
    if blur.any():
        sigma = float(torch.empty(1).uniform_(1.0, 3.0))
        radius = int(math.ceil(3 * sigma))
        t = torch.arange(-radius, radius + 1, dtype=pixels.dtype)
        k1 = torch.exp(-0.5 * (t / sigma) ** 2)
        k1 = k1 / k1.sum()
        padded = torch.nn.functional.pad(pixels[blur], (radius, radius, radius, radius), mode="reflect")
        blurred = torch.nn.functional.conv2d(padded, k1.view(1, 1, 1, -1))
        out[blur] = torch.nn.functional.conv2d(blurred, k1.view(1, 1, -1, 1))
    noise = group == 1
    if noise.any():
        std = torch.empty(int(noise.sum()), 1, 1, 1).uniform_(4.0, 20.0)
        out[noise] = pixels[noise] + std * torch.randn_like(pixels[noise])
    dark = group == 2
    if dark.any():
        gain = torch.empty(int(dark.sum()), 1, 1, 1).uniform_(0.2, 0.6)
        out[dark] = 255.0 * gain * (pixels[dark] / 255.0) ** 1.5
    return torch.round(out.clamp(0.0, 255.0))


@register("elbo_negatives")
def elbo_negatives(model: torch.nn.Module, pixels: torch.Tensor, step: TrainStep) -> ObjectiveResult:
    """The paper's ELBO plus synthetic degradations as negatives (a candidate objective).

    Loss = negative ELBO (as ``elbo``) + 4096 * mean(relu(m - (log p(x|z) - log p(x~|z~)) / 4096)):
    each crop's likelihood must beat that of a degraded copy x~ (``synthetic_negatives``) by
    m = 0.1 nats per pixel. No labels: the negatives are made from the clean crop itself.
    """
    mu_z, log_sigma_z, out = model(pixels)
    rec = gaussian_log_likelihood(pixels, out)
    kl = kl_to_standard_normal(mu_z, log_sigma_z)
    beta = kl_weight(step)
    negatives = synthetic_negatives(pixels)
    _, _, out_neg = model(negatives)
    rec_neg = gaussian_log_likelihood(negatives, out_neg)
    n_pix = pixels[0].numel()
    hinge = torch.relu(NEGATIVE_MARGIN_NATS_PX - (rec - rec_neg) / n_pix)
    loss = (-rec + beta * kl).mean() + n_pix * hinge.mean()
    return ObjectiveResult(
        loss=loss,
        logs={
            "nll_px": float(-rec.detach().mean()) / n_pix,
            "kl": float(kl.detach().mean()),
            "beta": beta,
            "neg_ok": float((hinge.detach() == 0).float().mean()),
        },
    )


def is_finite(result: ObjectiveResult) -> bool:
    return bool(torch.isfinite(result.loss.detach()).all())
