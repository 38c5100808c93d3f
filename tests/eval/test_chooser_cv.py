"""Choosing the ranker's weights by cross-validation over people (eval/chooser_cv.py)."""

from __future__ import annotations

import numpy as np

from snapseal.eval.chooser_cv import TrackFeatures, choices, cross_validate, relative_excess


def _tracks(n_tracks: int = 12, n_frames: int = 30, seed: int = 0):
    """Synthetic tracks where the recognisable frame is frontal: distance grows with the turn,
    while the score prefers the turned (sharper-looking) frames."""
    rng = np.random.default_rng(seed)
    scores, features, distances, groups = [], [], [], []
    for t in range(n_tracks):
        deviation = rng.uniform(0, 0.6, n_frames)
        height = rng.uniform(60, 120, n_frames)
        distances.append(0.2 + deviation + rng.normal(0, 0.01, n_frames))
        scores.append(4096 * (0.3 * deviation + rng.normal(0, 0.01, n_frames)))  # misled by the turn
        features.append(TrackFeatures(deviation, height))
        groups.append(f"person {t // 2}")  # two tracks per person
    return scores, features, [distances], groups


def test_cross_validation_finds_that_the_pose_term_helps_and_never_peeks_at_the_held_out_person():
    scores, features, distances, groups = _tracks()
    result = cross_validate("frontal", scores, features, distances, groups)
    alone = choices(scores, features, 0.0, 0.0)
    everyone = list(range(len(scores)))
    assert result.shipped[0] > 0  # a pose weight was chosen
    assert result.cross_validated < relative_excess(distances, alone, everyone)
    assert len(result.folds) == len(set(groups)) and len(result.held_out_choices) == len(scores)
    assert result.in_sample <= result.cross_validated + 1e-12  # held out can only be as good or worse


def test_relative_excess_is_zero_for_the_oracle():
    scores, features, distances, groups = _tracks(4)
    oracle = [int(np.argmin(d)) for d in distances[0]]
    assert relative_excess(distances, oracle, range(4)) == 0.0
