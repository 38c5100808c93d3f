"""Cheap host-side measurements of a crop, used by the scorers (numpy + cv2 only).

Each function takes N x 64 x 64 uint8 crops (and, where named, the accelerator's outputs) and
returns N float64. All are deterministic.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


# Immerkaer (1996): this kernel cancels a locally linear image, leaving mostly noise.
IMMERKAER_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)


def png_bits(crops: np.ndarray) -> np.ndarray:
    """Bits of the crop's lossless PNG encoding (zlib level 9): its complexity L(x), the
    input-complexity correction of Serra et al. (ICLR 2020)."""
    out = np.empty(len(crops), np.float64)
    for i, crop in enumerate(crops):
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(crop), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:  # pragma: no cover - cv2 encodes every uint8 image
            raise RuntimeError("cv2 failed to PNG-encode a crop")
        out[i] = 8.0 * len(encoded)
    return out


def flat_region_noise_sigma(crops: np.ndarray, keep_fraction: float = 0.5) -> np.ndarray:
    """Immerkaer's estimate over the flattest pixels only (lowest Sobel gradient, Tai & Yang
    2008): edges and texture of the face inflate the plain estimate, added noise does not
    care where it lands. Grey levels (0..255)."""
    out = np.empty(len(crops), np.float64)
    for i, crop in enumerate(crops):
        img = crop.astype(np.float64)
        response = np.abs(cv2.filter2D(img, -1, IMMERKAER_KERNEL)[1:-1, 1:-1])
        gradient = (np.abs(cv2.Sobel(img, cv2.CV_64F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(img, cv2.CV_64F, 0, 1, ksize=3)))[1:-1, 1:-1]
        flat = gradient <= np.quantile(gradient, keep_fraction)
        out[i] = math.sqrt(math.pi / 2.0) * response[flat].mean() / 6.0
    return out


def laplacian_variance(crops: np.ndarray) -> np.ndarray:
    """Variance of the 3x3 Laplacian (focus measure)."""
    return np.array(
        [cv2.Laplacian(crop.astype(np.float64), cv2.CV_64F, ksize=1).var() for crop in crops],
        np.float64,
    )


def contrast(crops: np.ndarray) -> np.ndarray:
    """Std of the grey levels, 0..255."""
    return crops.reshape(len(crops), -1).astype(np.float64).std(axis=1)
