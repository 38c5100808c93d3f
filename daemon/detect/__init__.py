"""Face detection: the ``Detector`` interface and the factory the pipeline and loaders use.

    from snapseal.daemon.detect import make_detector
    detector = make_detector(min_face_px=40, confidence=0.9)
    detections = detector.detect(frame_bgr)  # list[Detection], best first

MTCNN (the paper's detector) is the one detector; the runtime that executes its networks is
chosen by ``backend`` (the config's ``[detector] runtime``): ``onnxruntime`` (default),
``opencv`` (cv2.dnn) or ``ncnn`` (weights built by ``make detector-ncnn``); see
``runtimes.py``. All three give the same detections up to float rounding (tested). Speed per
runtime and thread count: ``python -m snapseal.eval.bench.detector``.

``schedule.py`` holds the detection schedule the pipeline calls: a full detection every k-th
frame and, in between, O-Net alone on the tracker's predicted boxes.
"""

from __future__ import annotations

import os

from snapseal.daemon.detect.base import BoxRefiner, Detector
from snapseal.daemon.detect.mtcnn import MtcnnDetector
from snapseal.daemon.detect.runtimes import RUNTIMES, available_runtimes
from snapseal.daemon.detect.schedule import DetectionSchedule

DEFAULT_BACKEND = "onnxruntime"


def make_detector(
    min_face_px: float = 40,
    confidence: float = 0.9,
    backend: str = DEFAULT_BACKEND,
    weights_dir: str | os.PathLike[str] | None = None,
    num_threads: int | None = 1,  # 1 measured fastest on 2 shared cores; None = runtime default
    ncnn_weights_dir: str | os.PathLike[str] | None = None,
    pyramid_interpolation: str = "area",
) -> MtcnnDetector:
    """The face detector (MTCNN) configured like the daemon's ``[detector]`` section."""
    return MtcnnDetector(
        min_face_px=min_face_px,
        confidence=confidence,
        backend=backend,
        weights_dir=weights_dir,
        num_threads=num_threads,
        ncnn_weights_dir=ncnn_weights_dir,
        pyramid_interpolation=pyramid_interpolation,
    )


def detector_from_config(section) -> MtcnnDetector:
    """The detector of a ``[detector]`` config section (``config.DetectorConfig``). Keys a
    section does not have take the factory's defaults."""
    get = lambda key, default: getattr(section, key, default)  # noqa: E731
    ncnn_dir = get("ncnn_weights_dir", None)
    threads = get("threads", 1)
    return make_detector(
        min_face_px=section.min_face_px,
        confidence=section.confidence,
        backend=get("runtime", DEFAULT_BACKEND),
        num_threads=threads if threads else None,
        ncnn_weights_dir=ncnn_dir,
        pyramid_interpolation=get("pyramid_interpolation", "area"),
    )


def schedule_from_config(detector, section) -> DetectionSchedule:
    """The detection schedule of a ``[detector]`` section: full detection every ``full_every``
    frames (1 when the section has no such key)."""
    return DetectionSchedule(detector, int(getattr(section, "full_every", 1)))


__all__ = ["BoxRefiner", "DetectionSchedule", "Detector", "MtcnnDetector", "RUNTIMES", "available_runtimes", "detector_from_config",
           "make_detector", "schedule_from_config"]
