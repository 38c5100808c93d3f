"""Classical no-reference quality baselines, reported beside the VAE's scores.

All take a batch of N x 64 x 64 uint8 grayscale crops and return N float64, HIGHER = BETTER
(so BRISQUE, where lower is better, is negated). Face size is not among them: on fixed-size
64x64 crops it carries no information.

- Laplacian variance: the variance of the 3x3 Laplacian, the usual sharpness/focus measure.
- BRISQUE (Mittal et al. 2012) from the ``brisque`` package (its bundled LIVE-trained SVM).
  brisque 0.2.0 fails under numpy 2 (it builds 1-element arrays where it wants scalars, then
  ``float()`` refuses them); ``_PatchedBrisque`` flattens them, nothing else changes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import cv2
import numpy as np


def laplacian_variance(crops: np.ndarray) -> np.ndarray:
    crops = _check(crops)
    return np.array(
        [cv2.Laplacian(crop.astype(np.float64), cv2.CV_64F, ksize=1).var() for crop in crops],
        np.float64,
    )


def brisque(crops: np.ndarray) -> np.ndarray:
    """Negated BRISQUE score (higher = better)."""
    crops = _check(crops)
    model = _brisque_model()
    # BRISQUE's package converts RGB to grey itself; a grey crop goes in as three equal channels
    return np.array([-float(model.score(np.repeat(crop[:, :, None], 3, axis=2))) for crop in crops])


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "laplacian_var": laplacian_variance,
    "brisque": brisque,
}


@lru_cache(maxsize=1)
def _brisque_model():
    import warnings

    with warnings.catch_warnings():  # scipy.ndimage.filters deprecation inside the package
        warnings.simplefilter("ignore", DeprecationWarning)
        from brisque import BRISQUE

    class _PatchedBrisque(BRISQUE):
        def scale_features(self, features):
            flat = np.array([float(np.ravel(np.asarray(f, np.float64))[0]) for f in features])
            low = np.asarray(self.scale_params["min_"], np.float64).ravel()
            high = np.asarray(self.scale_params["max_"], np.float64).ravel()
            return -1.0 + 2.0 / (high - low) * (flat - low)

    return _PatchedBrisque(url=False)


def _check(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    if crops.ndim != 3 or crops.dtype != np.uint8:
        raise ValueError(f"expected N x H x W uint8 crops, got {crops.shape} {crops.dtype}")
    return crops
