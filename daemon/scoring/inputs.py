"""Checks every scorer applies to its input before any arithmetic.

Wrong shapes or dtypes are the caller's bug or a bad file: a ``SnapsealError`` naming what was
wrong. A uniform crop (a lens cap, a blank wall, an all-black frame) is valid input but holds no
face: it gets ``UNIFORM_SCORE``, a defined very low score, and the flag ``uniform = 1`` in the
scorer's components, never a NaN or an overflow.
"""

from __future__ import annotations

import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import CROP_SIZE

UNIFORM_SCORE = -1.0e9  # below any real crop's score, finite so JSON and comparisons stay simple
UNIFORM_MAX_RANGE = 2  # grey levels: a crop whose max - min is at most this is "uniform"


def check_crops(crops: object, what: str = "crops") -> np.ndarray:
    """The batch as an N x 64 x 64 uint8 array (a single 64 x 64 crop becomes N = 1)."""
    if not isinstance(crops, np.ndarray):
        raise SnapsealError(f"{what}: expected a numpy array of N x {CROP_SIZE} x {CROP_SIZE} uint8, got {type(crops).__name__}")
    if crops.ndim == 2:
        crops = crops[None]
    if crops.dtype != np.uint8:
        raise SnapsealError(f"{what}: expected dtype uint8, got {crops.dtype}")
    if crops.ndim != 3 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE):
        raise SnapsealError(f"{what}: expected shape N x {CROP_SIZE} x {CROP_SIZE}, got {crops.shape}")
    return np.ascontiguousarray(crops)


def uniform_mask(crops: np.ndarray) -> np.ndarray:
    """True where a crop is (nearly) one flat grey level."""
    flat = crops.reshape(len(crops), -1)
    return (flat.max(axis=1).astype(np.int16) - flat.min(axis=1)) <= UNIFORM_MAX_RANGE
