"""Frame selection on video: which crop of a track does each method keep, and how recognisable
is it? For every track: the embedding distance between each crop and the person's clean
reference; each method keeps one crop; the oracle keeps the closest one.

Reported per method: the mean distance of the kept crops, the mean excess over the oracle's
distance, and the rate at which the kept crop is within 5 % of the oracle's distance
(d_kept <= 1.05 d_oracle).

Rules: a scoring method keeps its highest-scoring crop (first one on ties, as the daemon's
chooser). Frigate's rule is sequential, exactly as Frigate updates its snapshot: a new crop
replaces the current one unless it touches the frame edge while the current does not, and then
only if its detector confidence is higher by more than 0.05 or its box area larger by more than
10 %. Random keeps a uniformly drawn crop: we report its EXPECTED distance (the track mean) and
its expected within-5 % rate, so it carries no luck.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WITHIN = 1.05  # "within 5 % of the oracle's distance"


@dataclass(frozen=True)
class TrackCrops:
    """One track of one video, every crop the pipeline made for it, with what we measured."""

    video: str
    track_id: int
    identity: str
    frame_indices: np.ndarray  # n
    crops: np.ndarray  # n x 64 x 64 uint8
    face_area_px: np.ndarray  # n
    on_edge: np.ndarray  # n bool
    confidence: np.ndarray  # n
    distances: np.ndarray  # n: embedding distance to the person's clean reference


def argmax_choice(scores: np.ndarray) -> int:
    return int(np.argmax(np.asarray(scores, np.float64)))


def frigate_choice(confidence: np.ndarray, area: np.ndarray, on_edge: np.ndarray) -> int:
    """Frigate's ``is_better_thumbnail`` applied frame by frame (its snapshot update)."""
    best = 0
    for i in range(1, len(area)):
        if on_edge[i] and not on_edge[best]:
            continue
        if confidence[i] > confidence[best] + 0.05 or area[i] > area[best] * 1.1:
            best = i
    return best


@dataclass(frozen=True)
class SelectionSummary:
    method: str
    tracks: int
    mean_distance: float
    mean_excess_over_oracle: float
    within_5pct_rate: float


def summarise(method: str, tracks: list[TrackCrops], chosen: list[int]) -> SelectionSummary:
    kept = np.array([t.distances[i] for t, i in zip(tracks, chosen)])
    oracle = np.array([t.distances.min() for t in tracks])
    return SelectionSummary(method, len(tracks), float(kept.mean()), float((kept - oracle).mean()),
                            float(np.mean(kept <= WITHIN * oracle)))


def summarise_random(tracks: list[TrackCrops]) -> SelectionSummary:
    expected = np.array([t.distances.mean() for t in tracks])
    oracle = np.array([t.distances.min() for t in tracks])
    rate = np.array([np.mean(t.distances <= WITHIN * t.distances.min()) for t in tracks])
    return SelectionSummary("random (expected)", len(tracks), float(expected.mean()),
                            float((expected - oracle).mean()), float(rate.mean()))
