"""What every loader shares: the sample record, image reading, faces -> crops.

One definition of "a face crop": ``snapseal.daemon.detect`` finds the faces and
``snapseal.daemon.crop`` cuts them, exactly as the daemon does on the camera.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from snapseal.daemon.crop import DEFAULT_VARIANT, REGION_SIZE, face_region, region_to_crop
from snapseal.daemon.detect import Detector, make_detector
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import Detection

LOG = logging.getLogger("snapseal.quantize.data")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})

# Loaders keep faces at least this big (box side, frame pixels) by default: a smaller face
# would be upsampled into the 64 px crop, i.e. blurred, and the model must learn GOOD faces.
DEFAULT_MIN_FACE_PX = 40
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class FaceSample:
    """One face: its 64x64 crop, the REGION_SIZE region it was cut from, and where it came from."""

    crop: np.ndarray  # 64 x 64 uint8 gray (region_to_crop(region))
    region: np.ndarray  # REGION_SIZE x REGION_SIZE uint8 gray, same framing
    identity: str  # who (person folder, CelebA identity, or a per-file id when unknown)
    source: str  # e.g. "celeba", "folder", "video", or a bootstrap source name
    origin: str  # file (and frame) it came from
    face_px: float  # the detection box's longer side in source pixels
    detection: Detection | None = None


def resolve_path(path: str | os.PathLike[str], what: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise SnapsealError(f"{what} not found: {resolved}")
    return resolved


def read_image(path: Path) -> np.ndarray | None:
    """BGR uint8, or None (with a warning) when the file is not a readable image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        LOG.warning("skipping %s: not a readable image", path)
        return None
    return image


def default_detector(detector: Detector | None, min_face_px: float = DEFAULT_MIN_FACE_PX,
                     confidence: float = DEFAULT_CONFIDENCE) -> Detector:
    return detector if detector is not None else make_detector(min_face_px=min_face_px, confidence=confidence)


def faces_in_image(
    image_bgr: np.ndarray,
    detector: Detector,
    *,
    identity: str,
    source: str,
    origin: str,
    variant: str = DEFAULT_VARIANT,
    min_face_px: float = DEFAULT_MIN_FACE_PX,
    max_faces: int | None = None,
) -> Iterator[FaceSample]:
    """Detect, keep faces at least min_face_px (largest first, at most max_faces), crop."""
    detections = [d for d in detector.detect(image_bgr) if max(d.box.width, d.box.height) >= min_face_px]
    detections.sort(key=lambda d: -d.box.area)
    if max_faces is not None:
        detections = detections[:max_faces]
    for index, detection in enumerate(detections):
        region = face_region(image_bgr, detection, variant, REGION_SIZE)
        yield FaceSample(
            crop=region_to_crop(region),
            region=region,
            identity=identity,
            source=source,
            origin=f"{origin}#face{index}",
            face_px=float(max(detection.box.width, detection.box.height)),
            detection=detection,
        )
