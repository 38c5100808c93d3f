"""Which crop of a track to keep: rankers that order a track's scored crops (higher is kept).

A track is one person, so a ranker only has to order the frames of one face; it may look at
what the camera knows about each candidate besides the quality score -- the detector's five
landmarks (pose) and the face's size in the frame (what the sealed evidence image's
resolution will be). Every term is computed on the host from the detection, numpy only.

Rankers (``CHOOSERS``; the config's ``[quality] chooser``):

- ``score``: the scorer's score alone. With ``scorer = "paper"`` this is the paper's rule; with
  the default scorer it is the daemon's rule before the rankers existed.
- ``frontal``: the score in bits per pixel, minus ``pose_weight`` x the face's turn measured
  from the landmarks (``pose_deviation``), plus ``size_weight`` x log2 of the face's height in
  frame pixels. The weights were chosen by grouped cross-validation on the evaluation's
  tracks (``python -m snapseal.eval --only selection``; docs/MODEL_CARD.md, "Choosing the
  crop of a track").
- ``frontal-calibrated``: the same terms with the score on the track's own scale,
  (s - median) / MAD of the track's scores (a track is one person: only the order of its own
  frames matters, and people's scores sit at different levels and spreads). Ordering by it is
  ordering by ``s - MAD x cost`` with cost = ``pose_weight`` x deviation - ``size_weight`` x
  log2 height, and the MAD is known only when the track ends, so the chooser keeps every crop
  that could still win for some MAD >= 0 -- the crops no k others beat on both the score and
  the cost (a Pareto front, usually a handful; at most ``PARETO_CAP``) -- and the scores alone
  (floats, a bounded sample) for the MAD; it decides when the track ends, exactly as the
  offline formula would.
- ``default``: the one that measured best there (``DEFAULT_CHOOSER``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import CROP_SIZE, Detection, ScoredCrop

N_PIXELS = CROP_SIZE * CROP_SIZE
CHOOSERS = ("default", "score", "frontal", "frontal-calibrated")
DEFAULT_CHOOSER = "frontal-calibrated"  # measured best: docs/MODEL_CARD.md, "Choosing the crop of a track"
# Chosen by `python -m snapseal.eval --only selection` (docs/MODEL_CARD.md), on all people.
FRONTAL_POSE_WEIGHT = 1.0
FRONTAL_SIZE_WEIGHT = 0.1
CALIBRATED_POSE_WEIGHT = 5.0
CALIBRATED_SIZE_WEIGHT = 2.0
PARETO_CAP = 64  # candidates kept per track by the calibrated ranker (their evidence images stay in memory)
SCORE_SAMPLE = 4096  # scores kept per track for its median and MAD (a fixed-seed reservoir beyond that)
POSE_UNRELIABLE = 1.0  # deviation given to a face whose landmarks cannot be read (missing, non-finite)

Ranker = Callable[[ScoredCrop], float]


def pose_deviation(detection: Detection) -> float:
    """How far the face is turned from the camera, from MTCNN's five landmarks: 0 = frontal.

    In the frame of the eyes (rotated so they are level, scaled so their distance is 1): the
    nose's horizontal offset from the eyes' midpoint plus the mouth centre's (a turned head
    moves both towards the side it turns to; roll is removed by the rotation), and how far the
    nose sits from the usual depth below the eyes (pitch: 0.5 to 0.8 eye distances is normal).
    Landmarks that cannot be read give ``POSE_UNRELIABLE``."""
    points = np.asarray(detection.landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        return POSE_UNRELIABLE
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    eye_vector = right_eye - left_eye
    eye_distance = float(np.hypot(*eye_vector))
    if eye_distance < 1e-6 or eye_vector[0] <= 0:
        return POSE_UNRELIABLE
    cos_a, sin_a = eye_vector / eye_distance
    mid = (left_eye + right_eye) / 2.0

    def in_eye_frame(point: np.ndarray) -> tuple[float, float]:
        dx, dy = point - mid
        return ((cos_a * dx + sin_a * dy) / eye_distance, (-sin_a * dx + cos_a * dy) / eye_distance)

    nose_x, nose_y = in_eye_frame(nose)
    mouth_x, _ = in_eye_frame((mouth_left + mouth_right) / 2.0)
    pitch = max(0.0, 0.5 - nose_y) + max(0.0, nose_y - 0.8)
    return abs(nose_x) + 0.5 * abs(mouth_x) + pitch


def face_height(detection: Detection) -> float:
    return max(float(detection.box.height), 1.0)


@dataclass(frozen=True)
class FrontalRanker:
    """score / 4096 (bits per pixel) - pose_weight x pose_deviation + size_weight x log2(face height)."""

    pose_weight: float = FRONTAL_POSE_WEIGHT
    size_weight: float = FRONTAL_SIZE_WEIGHT

    def __call__(self, scored: ScoredCrop) -> float:
        return rank_value(scored.score, pose_deviation(scored.crop.detection), face_height(scored.crop.detection),
                          self.pose_weight, self.size_weight)


def rank_value(score: float, deviation: float, height: float, pose_weight: float, size_weight: float) -> float:
    """The ``frontal`` ranker's formula on plain numbers (the evaluation calls it on arrays too)."""
    return score / N_PIXELS - pose_weight * deviation + size_weight * np.log2(np.maximum(height, 1.0))


def score_ranker(scored: ScoredCrop) -> float:
    return scored.score


@dataclass(frozen=True)
class CalibratedFrontalRanker:
    """(s - median) / MAD - pose_weight x deviation + size_weight x log2(height), per track.

    ``calibrated`` tells the chooser to keep the Pareto front and decide at the track's end;
    ``cost`` is the part that does not depend on the track's scale."""

    pose_weight: float = CALIBRATED_POSE_WEIGHT
    size_weight: float = CALIBRATED_SIZE_WEIGHT
    calibrated = True

    def cost(self, scored: ScoredCrop) -> float:
        detection = scored.crop.detection
        return self.pose_weight * pose_deviation(detection) - self.size_weight * math.log2(face_height(detection))

    def __call__(self, scored: ScoredCrop) -> float:
        """The provisional rank before the track's scale is known (scale 1): for the clip only."""
        return scored.score - self.cost(scored)


def track_scale(scores) -> float:
    """The MAD of a track's scores (1 when they are all alike): the calibrated ranker's scale."""
    values = np.asarray(scores, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1.0
    mad = float(np.median(np.abs(values - np.median(values))))
    return mad if mad > 0 else 1.0


def make_ranker(name: str | None = None) -> Ranker:
    """The ranker called ``name`` (None or "default": ``DEFAULT_CHOOSER``); unknown -> SnapsealError."""
    name = DEFAULT_CHOOSER if name in (None, "", "default") else name
    if name == "score":
        return score_ranker
    if name == "frontal":
        return FrontalRanker()
    if name == "frontal-calibrated":
        return CalibratedFrontalRanker()
    raise SnapsealError(f"unknown chooser {name!r}; known: {', '.join(CHOOSERS)}")


def finite_rank(value: float) -> float:
    """NaN never compares greater: it ranks lowest, so a track still keeps a crop."""
    return value if math.isfinite(value) else -math.inf
