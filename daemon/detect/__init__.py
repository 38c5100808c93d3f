"""Face detection: the ``Detector`` interface and the factory the pipeline and loaders use.

    from snapseal.daemon.detect import make_detector
    detector = make_detector(min_face_px=40, confidence=0.9)
    detections = detector.detect(frame_bgr)  # list[Detection], best first

MTCNN (the paper's detector) on onnxruntime with one thread is the default; ``backend="opencv"``
runs the same graphs on cv2.dnn. Measured with ``python -m snapseal.eval.bench.detector --image
build/assets/insightface/t1.jpg`` (640x480, 6 faces, min_face_px 40, 2 cores shared by a busy
machine): onnxruntime 1 thread 116-177 ms/frame vs cv2.dnn 1 thread 164-305 ms; 2 threads were
slower for onnxruntime under that load (276-770 ms).
"""

from __future__ import annotations

import os

from snapseal.daemon.detect.base import Detector
from snapseal.daemon.detect.mtcnn import MtcnnDetector

DEFAULT_BACKEND = "onnxruntime"


def make_detector(
    min_face_px: float = 40,
    confidence: float = 0.9,
    backend: str = DEFAULT_BACKEND,
    weights_dir: str | os.PathLike[str] | None = None,
    num_threads: int | None = 1,  # 1 measured fastest on 2 shared cores; None = runtime default
) -> Detector:
    """The default face detector (MTCNN) configured like the daemon's ``[detector]`` section."""
    return MtcnnDetector(
        min_face_px=min_face_px,
        confidence=confidence,
        backend=backend,
        weights_dir=weights_dir,
        num_threads=num_threads,
    )


__all__ = ["Detector", "MtcnnDetector", "make_detector"]
