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


def is_finite(result: ObjectiveResult) -> bool:
    return bool(torch.isfinite(result.loss.detach()).all())
