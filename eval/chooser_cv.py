"""Choosing the crop of a track: the daemon's rankers (daemon/scoring/chooser.py), their weights
chosen by cross-validation over PEOPLE (never a frame of a held-out person helps choose the
weights that pick that person's frame).

Objective (lower is better): the kept crop's relative excess over the oracle,
d_kept / d_oracle - 1, averaged over tracks, over both embedders, on what the recogniser gets
(the evidence view by default). Grouped leave-one-person-out: for each person, the weights are
chosen on the other people's tracks and applied to that person's tracks; the pooled held-out
choices are what the tables report as "(cross-validated)". The shipped weights are then chosen
on all people (in-sample; reported beside).

Offline only, for comparison: "calibrated within the track" variants replace the score by its
rank-free standardisation inside the track ((s - median) / MAD): a track is one person, so only
the order of its own frames matters, and this asks whether putting the score on a per-track
scale before adding pose helps. The daemon cannot compute it online without keeping every
score of a track (it keeps the top-k only), so it ships only if it clearly wins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from snapseal.daemon.scoring.chooser import pose_deviation, rank_value

POSE_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
SIZE_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)
CALIBRATED_POSE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
CALIBRATED_SIZE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class TrackFeatures:
    deviation: np.ndarray  # n: pose_deviation of each crop's detection
    height: np.ndarray  # n: face box height in frame pixels


def track_features(detections) -> TrackFeatures:
    return TrackFeatures(np.array([pose_deviation(d) for d in detections], np.float64),
                         np.array([max(float(d.box.height), 1.0) for d in detections], np.float64))


def _calibrated(score: np.ndarray) -> np.ndarray:
    median = np.median(score)
    mad = np.median(np.abs(score - median))
    return (score - median) / (mad if mad > 0 else 1.0)


def rank(score: np.ndarray, features: TrackFeatures, pose_weight: float, size_weight: float,
         calibrated: bool = False) -> np.ndarray:
    if calibrated:
        return (_calibrated(score) - pose_weight * features.deviation
                + size_weight * np.log2(np.maximum(features.height, 1.0)))
    return rank_value(score, features.deviation, features.height, pose_weight, size_weight)


def choices(scores: Sequence[np.ndarray], features: Sequence[TrackFeatures], pose_weight: float, size_weight: float,
            calibrated: bool = False) -> list[int]:
    return [int(np.argmax(rank(np.asarray(s, np.float64), f, pose_weight, size_weight, calibrated)))
            for s, f in zip(scores, features)]


def relative_excess(distances: Sequence[Sequence[np.ndarray]], picked: Sequence[int], which: Sequence[int]) -> float:
    """Mean over embedders and the tracks ``which`` of d_kept / d_oracle - 1."""
    values = []
    for per_embedder in distances:
        for i in which:
            d = per_embedder[i]
            values.append(d[picked[i]] / max(float(d.min()), 1e-9) - 1.0)
    return float(np.mean(values)) if values else float("nan")


@dataclass
class CvResult:
    label: str
    calibrated: bool
    shipped: tuple[float, float]  # weights chosen on all people
    in_sample: float  # objective with the shipped weights, all tracks
    cross_validated: float  # objective of the pooled held-out choices
    held_out_choices: list[int]  # per track, the choice made with weights chosen without its person
    folds: list[tuple[str, tuple[float, float]]]  # (held-out person, weights chosen without them)


def cross_validate(label: str, scores: Sequence[np.ndarray], features: Sequence[TrackFeatures],
                   distances: Sequence[Sequence[np.ndarray]], groups: Sequence[str],
                   calibrated: bool = False) -> CvResult:
    """Grouped leave-one-person-out over the weight grid (see the module's doc)."""
    grid = list(itertools.product(CALIBRATED_POSE_WEIGHTS if calibrated else POSE_WEIGHTS,
                                  CALIBRATED_SIZE_WEIGHTS if calibrated else SIZE_WEIGHTS))
    picks = {weights: choices(scores, features, *weights, calibrated=calibrated) for weights in grid}
    everyone = list(range(len(scores)))

    def best(which: list[int]) -> tuple[float, float]:
        # ties: the smaller weights (the grid is in increasing order), i.e. the simpler rule
        return min(grid, key=lambda w: (round(relative_excess(distances, picks[w], which), 12), w[0] + w[1]))

    held_out = [0] * len(scores)
    folds = []
    for person in sorted(set(groups)):
        train = [i for i in everyone if groups[i] != person]
        test = [i for i in everyone if groups[i] == person]
        weights = best(train) if train else grid[0]
        folds.append((person, weights))
        for i in test:
            held_out[i] = picks[weights][i]
    shipped = best(everyone)
    return CvResult(label, calibrated, shipped, relative_excess(distances, picks[shipped], everyone),
                    relative_excess(distances, held_out, everyone), held_out, folds)
