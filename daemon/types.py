"""The dataclasses that flow from stage to stage (docs/ARCHITECTURE.md, "The flow").

capture -> Frame -> detect -> Detection -> track -> Track (track.py) -> accel/score -> seal.
Pure data, no behaviour beyond validation: every stage takes and returns these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_SIZE = 64  # the VAE's input: 64x64 grayscale uint8


@dataclass(frozen=True)
class Frame:
    """One decoded camera frame."""

    image_bgr: np.ndarray  # H x W x 3 uint8, OpenCV's channel order
    timestamp: float  # seconds since the epoch (wall clock) of capture
    index: int  # frame number since the source was opened


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in frame pixels (x1, y1) inclusive, (x2, y2) exclusive."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def as_list(self) -> list[float]:
        return [float(self.x1), float(self.y1), float(self.x2), float(self.y2)]


@dataclass(frozen=True)
class Detection:
    """One face found in one frame."""

    box: Box
    landmarks: np.ndarray  # 5 x 2 float: left eye, right eye, nose, mouth left, mouth right
    confidence: float


@dataclass(frozen=True)
class EvidenceImage:
    """A colour cut of the frame for the investigator, kept beside the model crop and sealed with it.

    ``frame_box`` is the part of the frame it shows, in frame pixels, before any downscale; it may
    reach past the frame's edges, where the image is padded (``padded``). ``scale`` <= 1 is the
    downscale applied to fit the configured cap (never upscaled)."""

    pixels: np.ndarray  # H x W x 3 uint8, OpenCV's channel order (BGR)
    role: str  # "evidence" (the face with context) | "person" (the tracked person's region)
    frame_box: tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels (x2, y2 exclusive)
    scale: float = 1.0
    padded: bool = False


@dataclass(frozen=True)
class FaceCrop:
    """A detection cut out of its frame, ready for the quality model."""

    pixels: np.ndarray  # CROP_SIZE x CROP_SIZE uint8 grayscale
    detection: Detection
    frame_index: int
    timestamp: float
    # Colour images for the investigator (made from the same frame); sealed with the model crop.
    evidence: tuple[EvidenceImage, ...] = ()


@dataclass(frozen=True)
class ScoredCrop:
    crop: FaceCrop
    score: float  # higher is better; the scorer named in `scorer` made it
    scorer: str
