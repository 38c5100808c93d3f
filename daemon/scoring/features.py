"""Cheap host-side measurements of a crop, used by the scorers (numpy + cv2 only).

Each function takes N x 64 x 64 uint8 crops (and, where named, the accelerator's outputs) and
returns N float64. All are deterministic.

The noise estimate works on the whole batch at once in integers (a 3x3 filter of uint8 pixels
is an exact small integer): the same numbers as the per-crop float64 ``cv2`` form, bit for bit
(tests/daemon/test_detect_host_work.py compares it with ``reference_flat_region_noise_sigma``),
for about a quarter of the time.
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
    care where it lands. Grey levels (0..255). Interior pixels only, so no border rule.

    Whole batch in int16 (|filter| <= 16 x 255), the threshold by partition (numpy's linear
    quantile, same arithmetic), the mean as an exact integer sum over a count: equal, bit for
    bit, to ``reference_flat_region_noise_sigma``."""
    crops = np.asarray(crops)
    n = len(crops)
    if n == 0:
        return np.zeros(0, np.float64)
    p = crops.astype(np.int16)
    c = p[:, 1:-1, 1:-1]
    up, down, left, right = p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]
    ul, ur, dl, dr = p[:, :-2, :-2], p[:, :-2, 2:], p[:, 2:, :-2], p[:, 2:, 2:]
    response = np.abs(4 * c - 2 * (up + down + left + right) + (ul + ur + dl + dr)).reshape(n, -1)  # IMMERKAER_KERNEL
    gx = (ur + 2 * right + dr) - (ul + 2 * left + dl)  # Sobel, ksize 3
    gy = (dl + 2 * down + dr) - (ul + 2 * up + ur)
    gradient = (np.abs(gx) + np.abs(gy)).reshape(n, -1)
    flat = gradient <= _linear_quantile(gradient, keep_fraction)[:, None]
    means = (response * flat).sum(axis=1, dtype=np.int64) / flat.sum(axis=1)
    return math.sqrt(math.pi / 2.0) * means / 6.0


def _linear_quantile(rows: np.ndarray, q: float) -> np.ndarray:
    """``np.quantile(row, q)`` (method "linear") of every row, by partition: the same two order
    statistics and numpy's own interpolation formula, so the same float64."""
    m = rows.shape[-1]
    index = q * (m - 1)
    low = int(math.floor(index))
    high = min(low + 1, m - 1)
    t = index - low
    part = np.partition(rows, (low, high), axis=-1)
    a, b = part[:, low].astype(np.float64), part[:, high].astype(np.float64)
    diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


def laplacian_variance(crops: np.ndarray) -> np.ndarray:
    """Variance of the 3x3 Laplacian (focus measure). (cv2's float64 filter measured faster
    here than any integer form, so it stays as it was.)"""
    return np.array(
        [cv2.Laplacian(crop.astype(np.float64), cv2.CV_64F, ksize=1).var() for crop in crops],
        np.float64,
    )


def contrast(crops: np.ndarray) -> np.ndarray:
    """Std of the grey levels, 0..255."""
    return crops.reshape(len(crops), -1).astype(np.float64).std(axis=1)


# -- the reference forms (per crop, float64 cv2 filters): what the fast forms must equal --------

def reference_flat_region_noise_sigma(crops: np.ndarray, keep_fraction: float = 0.5) -> np.ndarray:
    out = np.empty(len(crops), np.float64)
    for i, crop in enumerate(crops):
        img = crop.astype(np.float64)
        response = np.abs(cv2.filter2D(img, -1, IMMERKAER_KERNEL)[1:-1, 1:-1])
        gradient = (np.abs(cv2.Sobel(img, cv2.CV_64F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(img, cv2.CV_64F, 0, 1, ksize=3)))[1:-1, 1:-1]
        flat = gradient <= np.quantile(gradient, keep_fraction)
        out[i] = math.sqrt(math.pi / 2.0) * response[flat].mean() / 6.0
    return out

