"""Which frames get a full detection, and what the frames in between get.

A full MTCNN pass costs the P-Net pyramid over the whole frame (88 MMAC at 640x480, min face
40) plus R-Net and O-Net on its candidates; O-Net alone on one box is 12.9 MMAC. A face
that was found a frame ago is where the tracker predicts it, so between full detections the
schedule runs O-Net alone on the tracker's predicted boxes (``BoxRefiner.detect_in_boxes``):

- frame 0, and every ``full_every``-th frame after the last full pass: full detection
  (a new face is found within ``full_every`` frames);
- other frames: O-Net on the predicted boxes of the tracks seen since the last full pass;
- while a followed track is young (fewer than ``young_hits`` matched frames: a face just come
  in), every frame is a full pass, as without a schedule, so the tracker establishes it;
- with no live track there is nothing to follow: the frame gets no detection work at all
  (an empty scene costs one full pass per ``full_every`` frames);
- a predicted face that O-Net does not confirm brings the next full pass forward to the next
  frame (so a lost face costs one frame, not ``full_every``).

``full_every = 1`` is a full detection on every frame: the detector as it always ran. Each
board's k lives in ``daemon/board_profiles.py``; it was chosen by measurement (docs/HARDWARE.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from snapseal.daemon.detect.base import BoxRefiner, Detector
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import Box, Detection

# frame index -> the live tracks: N x 4 predicted boxes, or N x 10 (predicted box, last matched
# box, frames since that match, matched frames: ``Tracker.predicted_tracks``)
Predictor = Callable[[int], np.ndarray]


@dataclass
class ScheduleStats:
    full: int = 0  # frames with a full detection
    refined: int = 0  # frames with O-Net alone on predicted boxes
    refined_boxes: int = 0  # boxes given to O-Net alone
    lost: int = 0  # predicted faces O-Net did not confirm (their frame then got a full pass)
    crowded: int = 0  # frames whose predicted boxes touched (a full pass instead)
    windows: int = 0  # cascade runs in a window around a lost face
    young: int = 0  # frames with a full pass because a followed track was just born

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class DetectionSchedule:
    """Full detection every ``full_every`` frames; O-Net alone on predicted boxes in between."""

    detector: Detector
    full_every: int = 1
    window: float = 2.5  # side of the search window around a lost face, in box sides (0: none)
    search_recent: int = 2  # a lost face found within this many frames gets the window search
    full_on_loss: bool = False  # a face the window search misses too gets a full pass at once
    young_hits: int = 5  # while a followed track has fewer matched frames, every frame is a full pass
    stats: ScheduleStats = field(default_factory=ScheduleStats)

    def __post_init__(self) -> None:
        if not (isinstance(self.full_every, int) and 1 <= self.full_every <= 1000):
            raise SnapsealError(f"[detector] full_every must be an integer in [1, 1000], got {self.full_every!r}")
        if self.full_every > 1 and not isinstance(self.detector, BoxRefiner):
            raise SnapsealError(f"[detector] full_every = {self.full_every} needs a detector that can look inside "
                                f"given boxes; {getattr(self.detector, 'name', type(self.detector).__name__)} cannot")
        self._since_full: int | None = None  # frames since the last full pass (None: none yet)
        self._recent: deque[list[Detection]] = deque(maxlen=max(1, self.search_recent))  # last frames' faces

    follow_frames: int = 1 << 30  # tracks unseen longer than this are not followed (default: every live track)

    @property
    def name(self) -> str:
        return self.detector.name if self.full_every == 1 else f"{self.detector.name}/full-every-{self.full_every}"

    def detect(self, image_bgr: np.ndarray, frame_index: int, predict: Predictor | None = None) -> list[Detection]:
        detections = self._detect(image_bgr, frame_index, predict)
        self._recent.append(detections)
        return detections

    def _detect(self, image_bgr: np.ndarray, frame_index: int, predict: Predictor | None) -> list[Detection]:
        if self.full_every == 1 or predict is None or self._due():
            return self._full(image_bgr)
        tracks = np.asarray(predict(frame_index), dtype=np.float64)
        tracks = tracks.reshape(-1, tracks.shape[-1] if tracks.ndim == 2 else 4)
        boxes = tracks[:, :4]
        if len(boxes) == 0:
            self._since_full = (self._since_full or 0) + 1
            return []  # nothing to follow until the next full pass
        if tracks.shape[1] >= 10 and np.any(tracks[:, 9] < self.young_hits):
            self.stats.young += 1  # a face just found: full passes until its track is established
            return self._full(image_bgr)
        if _any_touch(boxes):
            self.stats.crowded += 1
            return self._full(image_bgr)
        self._since_full = (self._since_full or 0) + 1
        self.stats.refined += 1
        self.stats.refined_boxes += len(boxes)
        detections = self.detector.detect_in_boxes(image_bgr, boxes)  # type: ignore[attr-defined]
        lost = _unmatched(boxes, detections)
        self.stats.lost += len(lost)
        # Searched for: a face found in the last few frames and still inside the frame. One unseen
        # for longer (hidden, turned away) or walking out waits for O-Net or the next full pass.
        height, width = image_bgr.shape[:2]
        if tracks.shape[1] >= 9:  # the tracker says when each was last seen, and where
            lost = [i for i in lost if tracks[i, 8] <= self.search_recent
                    and (_inside(boxes[i], width, height) or _inside(tracks[i, 4:8], width, height))]
            regions = {i: _union(boxes[i], tracks[i, 4:8]) for i in lost}  # a young track's velocity can be off
        else:
            recent = [d for frame in self._recent for d in frame]
            lost = [i for i in lost if _inside(boxes[i], width, height) and not _unmatched(boxes[i:i + 1], recent)]
            regions = {i: boxes[i] for i in lost}
        if not lost:
            return detections
        if self.window > 0:
            for index in lost:
                self.stats.windows += 1
                detections = _merge(detections, _detect_in_window(self.detector, image_bgr, regions[index],
                                                                  self.window, side=_side(boxes[index])))
            detections.sort(key=lambda d: -d.confidence)
        if self.full_on_loss and _unmatched(boxes[lost], detections):
            return self._full(image_bgr)  # still lost: the whole frame, as without a schedule
        return detections

    def _due(self) -> bool:
        return self._since_full is None or self._since_full + 1 >= self.full_every

    def _full(self, image_bgr: np.ndarray) -> list[Detection]:
        self._since_full = 0
        self.stats.full += 1
        return self.detector.detect(image_bgr)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _unmatched(boxes: np.ndarray, detections: list[Detection], min_iou: float = 0.3) -> list[int]:
    """Indices of predicted boxes no detection overlaps (IoU >= min_iou)."""
    found = [np.array(d.box.as_list()) for d in detections]
    return [i for i, box in enumerate(boxes) if not any(_box_iou(box, other) >= min_iou for other in found)]


def _side(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])


def _detect_in_window(detector: Detector, image_bgr: np.ndarray, box: np.ndarray, sides: float,
                      side: float | None = None) -> list[Detection]:
    """The whole cascade on a square window around ``box``, ``sides`` face sides (``side``;
    default the box's) wider than the box, in frame pixels."""
    height, width = image_bgr.shape[:2]
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    face = _side(box) if side is None else side
    half = (_side(box) + (sides - 1.0) * face) / 2.0
    x1, y1 = max(int(cx - half), 0), max(int(cy - half), 0)
    x2, y2 = min(int(np.ceil(cx + half)), width), min(int(np.ceil(cy + half)), height)
    if x2 - x1 < 12 or y2 - y1 < 12:
        return []
    found = detector.detect(np.ascontiguousarray(image_bgr[y1:y2, x1:x2]))
    shift = np.array([x1, y1], np.float32)
    return [Detection(Box(d.box.x1 + x1, d.box.y1 + y1, d.box.x2 + x1, d.box.y2 + y1),
                      (d.landmarks + shift).astype(np.float32), d.confidence) for d in found]


def _merge(kept: list[Detection], extra: list[Detection], max_iou: float = 0.5) -> list[Detection]:
    """``kept`` plus the detections of ``extra`` that overlap none of them (a face found twice
    keeps its first detection)."""
    out = list(kept)
    for detection in extra:
        box = np.array(detection.box.as_list())
        if not any(_box_iou(box, np.array(other.box.as_list())) > max_iou for other in out):
            out.append(detection)
    return out


def _inside(box: np.ndarray, width: int, height: int, fraction: float = 0.5) -> bool:
    """At least ``fraction`` of the box's area lies inside the frame."""
    ix = max(0.0, min(box[2], width) - max(box[0], 0.0))
    iy = max(0.0, min(box[3], height) - max(box[1], 0.0))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return area > 0 and ix * iy >= fraction * area


def _any_touch(boxes: np.ndarray) -> bool:
    """Do any two boxes (N x 4) overlap or touch?"""
    if len(boxes) < 2:
        return False
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    apart = ((x1[:, None] > x2[None, :]) | (x2[:, None] < x1[None, :])
             | (y1[:, None] > y2[None, :]) | (y2[:, None] < y1[None, :]))
    np.fill_diagonal(apart, True)
    return not bool(apart.all())
