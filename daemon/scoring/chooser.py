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
CHOOSERS = ("default", "score", "frontal")
DEFAULT_CHOOSER = "score"  # until measured
# Chosen by `python -m snapseal.eval --only selection` (docs/MODEL_CARD.md).
FRONTAL_POSE_WEIGHT = 1.0
FRONTAL_SIZE_WEIGHT = 0.0
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


def make_ranker(name: str | None = None) -> Ranker:
    """The ranker called ``name`` (None or "default": ``DEFAULT_CHOOSER``); unknown -> SnapsealError."""
    name = DEFAULT_CHOOSER if name in (None, "", "default") else name
    if name == "score":
        return score_ranker
    if name == "frontal":
        return FrontalRanker()
    raise SnapsealError(f"unknown chooser {name!r}; known: {', '.join(CHOOSERS)}")


def finite_rank(value: float) -> float:
    """NaN never compares greater: it ranks lowest, so a track still keeps a crop."""
    return value if math.isfinite(value) else -math.inf
