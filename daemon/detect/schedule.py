"""Which frames get a full detection, and what the frames in between get.

A full MTCNN pass costs the P-Net pyramid over the whole frame (88 MMAC at 640x480, min face
40) plus R-Net and O-Net on its candidates; O-Net alone on one box is 12.9 MMAC. A face
that was found a frame ago is where the tracker predicts it, so between full detections the
schedule runs O-Net alone on the tracker's predicted boxes (``BoxRefiner.detect_in_boxes``):

- frame 0, and every ``full_every``-th frame after the last full pass: full detection
  (a new face is found within ``full_every`` frames);
- other frames: O-Net on the predicted boxes of the tracks seen since the last full pass;
- with no live track there is nothing to follow: the frame gets no detection work at all
  (an empty scene costs one full pass per ``full_every`` frames);
- a predicted face that O-Net does not confirm brings the next full pass forward to the next
  frame (so a lost face costs one frame, not ``full_every``).

``full_every = 1`` is a full detection on every frame: the detector as it always ran. Each
board's k lives in ``daemon/board_profiles.py``; it was chosen by measurement (docs/HARDWARE.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from snapseal.daemon.detect.base import BoxRefiner, Detector
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import Detection

Predictor = Callable[[int], np.ndarray]  # frame index -> N x 4 predicted boxes of live tracks


@dataclass
class ScheduleStats:
    full: int = 0  # frames with a full detection
    refined: int = 0  # frames with O-Net alone on predicted boxes
    refined_boxes: int = 0  # boxes given to O-Net alone
    lost: int = 0  # predicted faces O-Net did not confirm (their frame then got a full pass)
    crowded: int = 0  # frames whose predicted boxes touched (a full pass instead)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class DetectionSchedule:
    """Full detection every ``full_every`` frames; O-Net alone on predicted boxes in between."""

    detector: Detector
    full_every: int = 1
    stats: ScheduleStats = field(default_factory=ScheduleStats)

    def __post_init__(self) -> None:
        if not (isinstance(self.full_every, int) and 1 <= self.full_every <= 1000):
            raise SnapsealError(f"[detector] full_every must be an integer in [1, 1000], got {self.full_every!r}")
        if self.full_every > 1 and not isinstance(self.detector, BoxRefiner):
            raise SnapsealError(f"[detector] full_every = {self.full_every} needs a detector that can look inside "
                                f"given boxes; {getattr(self.detector, 'name', type(self.detector).__name__)} cannot")
        self._since_full: int | None = None  # frames since the last full pass (None: none yet)

    @property
    def name(self) -> str:
        return self.detector.name if self.full_every == 1 else f"{self.detector.name}/full-every-{self.full_every}"

    def detect(self, image_bgr: np.ndarray, frame_index: int, predict: Predictor | None = None) -> list[Detection]:
        if self.full_every == 1 or predict is None or self._due():
            return self._full(image_bgr)
        boxes = np.asarray(predict(frame_index), dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            self._since_full = (self._since_full or 0) + 1
            return []  # nothing to follow until the next full pass
        if _any_touch(boxes):
            self.stats.crowded += 1
            return self._full(image_bgr)
        self._since_full = (self._since_full or 0) + 1
        self.stats.refined += 1
        self.stats.refined_boxes += len(boxes)
        detections = self.detector.detect_in_boxes(image_bgr, boxes)  # type: ignore[attr-defined]
        if len(detections) < len(boxes):
            self.stats.lost += len(boxes) - len(detections)
            return self._full(image_bgr)
        return detections

    def _due(self) -> bool:
        return self._since_full is None or self._since_full + 1 >= self.full_every

    def _full(self, image_bgr: np.ndarray) -> list[Detection]:
        self._since_full = 0
        self.stats.full += 1
        return self.detector.detect(image_bgr)


def _any_touch(boxes: np.ndarray) -> bool:
    """Do any two boxes (N x 4) overlap or touch?"""
    if len(boxes) < 2:
        return False
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    apart = ((x1[:, None] > x2[None, :]) | (x2[:, None] < x1[None, :])
             | (y1[:, None] > y2[None, :]) | (y2[:, None] < y1[None, :]))
    np.fill_diagonal(apart, True)
    return not bool(apart.all())
