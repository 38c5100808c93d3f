"""The default quality score: the VAE's likelihood corrected for input complexity, noise and
exposure, all in bits.

    score(x) = log2 p(x | z = mu_z)                       the VAE: how well it explains x
             + PNG_bits(x)                                 minus what a generic compressor needs
             - w_noise * 4096 * log2(max(noise(x), s0) / s0)   bits spent on sensor noise
             - w_exposure * 4096 * max(0, log2(c0 / contrast(x)))  bits lost to under-exposure
             + w_sharp * 4096 * log2(var(Laplacian(x)))    the crop's own sharpness

Why (docs/MODEL_CARD.md has the measurements): a likelihood alone prefers smooth inputs, so the
paper's log RP ranks blurred, downscaled and darkened faces above sharp ones. Subtracting the
crop's own complexity (Serra et al., ICLR 2020: S(x) = -log p(x) - L(x), here negated) asks
instead "how much better than a generic compressor does the face model explain this crop?",
which a blurred or blocky crop cannot win. Additive noise is the one thing that raises a
compressor's bill faster than it lowers the likelihood, so the bits the noise costs are taken
back out (noise: Immerkaer's estimator over the crop's flattest half, grey levels; a crop at
or below the noise floor s0 pays nothing). A darkened crop loses contrast that the likelihood
rewards; the exposure term charges a per-pixel log-ratio for contrast (grey-level std) below
c0 (a contrast term rather than a mean-brightness one, so a darker skin tone in good light is
not penalised). The sharpness term is nearly identity-free (Laplacian variance's identity share
is about a third of the VAE term's), so it moves blurred crops down ACROSS people, which an
error-versus-reject curve needs and a within-person test cannot see (MODEL_CARD has the
ablation). Every term is in bits over the 64x64 crop, so the weights are plain numbers.

Computable from one accelerator pass (forward_at_mean: mu_x, log_sigma_x at z = mu_z) plus
host-side numpy/cv2 work (a PNG encode and three 3x3 filters of a 64x64 crop).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from snapseal.daemon.accel.base import Accelerator
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring import features, likelihood
from snapseal.daemon.scoring.inputs import UNIFORM_SCORE, check_crops, uniform_mask

N_PIXELS = 64 * 64
SHARPNESS_FLOOR = 1e-3  # var(Laplacian) floor: a near-flat crop's variance is ~0 (uniform ones are caught earlier)


@dataclass(frozen=True)
class ComplexityParams:
    """The formula's constants (stored in the bundle manifest's ``scorers.complexity``)."""

    # `make candidates` chooses these (docs/MODEL_CARD.md, "Choosing the default score")
    noise_floor: float = 2.0  # s0, grey levels: crops at or below it pay no noise bits
    noise_weight: float = 1.0  # w_noise
    contrast_floor: float = 20.0  # c0, grey-level std: crops at or above it pay no exposure bits
    exposure_weight: float = 1.0  # w_exposure
    sharpness_weight: float = 0.25  # w_sharp: bonus bits per pixel per doubling of var(Laplacian)

    @classmethod
    def from_manifest(cls, section: Any, where: str) -> "ComplexityParams":
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise SnapsealError(f"{where}: scorers.complexity must be a JSON object")
        known = {f.name for f in fields(cls)}
        values = {}
        for key, value in section.items():
            if key not in known:
                continue  # other keys (e.g. a formula string, notes) are for people
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise SnapsealError(f"{where}: scorers.complexity.{key} must be a finite number >= 0, got {value!r}")
            values[key] = float(value)
        # a manifest written before the sharpness term existed scores as it did then
        values.setdefault("sharpness_weight", 0.0)
        params = cls(**values)
        if params.noise_floor <= 0 or params.contrast_floor <= 0:
            raise SnapsealError(f"{where}: scorers.complexity floors must be > 0")
        return params

    def to_manifest(self) -> dict[str, Any]:
        return {**asdict(self), "formula": FORMULA}


FORMULA = (
    "log2 p(x|mu_z) + PNG_bits(x) - noise_weight*4096*log2(max(noise, noise_floor)/noise_floor)"
    " - exposure_weight*4096*max(0, log2(contrast_floor/contrast))"
    " + sharpness_weight*4096*log2(var(Laplacian(x)))"
)


class ComplexityScorer:
    """The default scorer (see the module docstring). One accelerator pass per crop."""

    name = "complexity"

    def __init__(self, accel: Accelerator, model_id: str, params: ComplexityParams | None = None) -> None:
        self.accel = accel
        self.model_id = model_id
        self.params = params or ComplexityParams()

    def components(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Every term of the formula (bits), the inputs of the host terms, and the score."""
        crops = check_crops(crops)
        uniform = uniform_mask(crops)
        n = len(crops)
        names = ("loglik_bits", "png_bits", "noise_bits", "exposure_bits", "sharpness_bits", "noise", "contrast")
        parts = {k: np.zeros(n) for k in names}
        real = ~uniform
        if real.any():
            x = crops[real]
            _, dist = self.accel.forward_at_mean(x)
            p = self.params
            noise = features.flat_region_noise_sigma(x)
            contrast = features.contrast(x)
            parts["loglik_bits"][real] = likelihood.gaussian_log_likelihood(x, dist) / math.log(2.0)
            parts["png_bits"][real] = features.png_bits(x)
            parts["noise_bits"][real] = p.noise_weight * N_PIXELS * np.log2(np.maximum(noise, p.noise_floor) / p.noise_floor)
            parts["exposure_bits"][real] = p.exposure_weight * N_PIXELS * np.maximum(
                0.0, np.log2(p.contrast_floor / np.maximum(contrast, 1.0))
            )
            if p.sharpness_weight:
                lapvar = np.maximum(features.laplacian_variance(x), SHARPNESS_FLOOR)
                parts["sharpness_bits"][real] = p.sharpness_weight * N_PIXELS * np.log2(lapvar)
            parts["noise"][real], parts["contrast"][real] = noise, contrast
        score = (parts["loglik_bits"] + parts["png_bits"] - parts["noise_bits"] - parts["exposure_bits"]
                 + parts["sharpness_bits"])
        score = np.where(uniform, UNIFORM_SCORE, score)
        if not np.all(np.isfinite(score)):  # a broken graph output must never pass as a score
            raise SnapsealError(f"complexity scorer: non-finite score from the accelerator ({self.model_id})")
        return {"score": score, **parts, "uniform": uniform.astype(np.float64)}

    def score_batch(self, crops: np.ndarray) -> np.ndarray:
        return self.components(crops)["score"]
