"""Mild training augmentation: the model must learn what a GOOD face looks like.

Geometric jitter (shift, scale, rotation, horizontal flip) is applied to the REGION_SIZE
(128 px) face region and then area-downsampled to 64 px, exactly like a crop is made, so an
augmented crop is as sharp as a real one. Photometric jitter is brightness/contrast only. No
blur, noise or compression: those are the degradations the score must rank low.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from snapseal.daemon.crop import region_to_crop
from snapseal.daemon.types import CROP_SIZE


@dataclass(frozen=True)
class AugmentConfig:
    max_shift: float = 0.04  # fraction of the crop side
    max_scale: float = 0.07  # scale in [1 - s, 1 + s]
    max_rotation_deg: float = 8.0
    flip_probability: float = 0.5
    max_brightness: float = 16.0  # added gray levels, +-
    max_contrast: float = 0.15  # gain in [1 - c, 1 + c] around the crop's mean


def augment_region(region: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()) -> np.ndarray:  # noqa: B008 (frozen)
    """One REGION_SIZE gray region -> one augmented 64x64 uint8 crop."""
    size = region.shape[0]
    angle = rng.uniform(-config.max_rotation_deg, config.max_rotation_deg)
    scale = rng.uniform(1.0 - config.max_scale, 1.0 + config.max_scale)
    shift = rng.uniform(-config.max_shift, config.max_shift, size=2) * size
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[:, 2] += shift
    warped = cv2.warpAffine(region, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < config.flip_probability:
        warped = warped[:, ::-1]
    crop = region_to_crop(np.ascontiguousarray(warped)).astype(np.float32)
    gain = rng.uniform(1.0 - config.max_contrast, 1.0 + config.max_contrast)
    offset = rng.uniform(-config.max_brightness, config.max_brightness)
    mean = crop.mean()
    crop = (crop - mean) * gain + mean + offset
    return np.clip(np.rint(crop), 0, 255).astype(np.uint8)


def augment_regions(
    regions: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()  # noqa: B008 (frozen)
) -> np.ndarray:
    """N x REGION_SIZE x REGION_SIZE uint8 -> N x 64 x 64 uint8, a fresh augmentation each call."""
    out = np.empty((len(regions), CROP_SIZE, CROP_SIZE), dtype=np.uint8)
    for index, region in enumerate(regions):
        out[index] = augment_region(region, rng, config)
    return out
