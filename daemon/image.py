"""Frame pixels in the one layout the stages work in: H x W x 3 uint8, OpenCV's BGR order."""

from __future__ import annotations

import cv2
import numpy as np

from snapseal.daemon.errors import SnapsealError


def as_bgr(image: np.ndarray, what: str) -> np.ndarray:
    """Grey, BGR or BGRA uint8 -> BGR (BGR passes through unchanged); anything else is a
    one-line error naming ``what`` was given the image."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise SnapsealError(f"{what} must be a uint8 image array, got {type(image).__name__} "
                            f"{getattr(image, 'dtype', '')}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise SnapsealError(f"{what} must be H x W (x 3|4), got shape {image.shape}")
