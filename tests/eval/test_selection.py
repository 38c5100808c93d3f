"""Frame-selection rules and summaries on hand-made tracks."""

from __future__ import annotations

import numpy as np
import pytest

from snapseal.eval.selection import TrackCrops, frigate_choice, summarise, summarise_random


def _track(distances, area=None, confidence=None, on_edge=None) -> TrackCrops:
    n = len(distances)
    return TrackCrops(
        video="v", track_id=0, identity="p", frame_indices=np.arange(n), crops=np.zeros((n, 64, 64), np.uint8),
        face_area_px=np.asarray(area if area is not None else np.ones(n), float),
        on_edge=np.asarray(on_edge if on_edge is not None else np.zeros(n, bool)),
        confidence=np.asarray(confidence if confidence is not None else np.full(n, 0.95), float),
        distances=np.asarray(distances, float),
    )


def test_frigate_rule_takes_a_clearly_larger_box() -> None:
    # 1.05x is not enough, 1.2x is; confidence within 0.05 changes nothing
    assert frigate_choice(np.array([0.9, 0.92, 0.93]), np.array([100, 105, 126]), np.zeros(3, bool)) == 2
    assert frigate_choice(np.array([0.9, 0.92]), np.array([100, 105]), np.zeros(2, bool)) == 0


def test_frigate_rule_prefers_higher_confidence_and_avoids_edges() -> None:
    assert frigate_choice(np.array([0.8, 0.9]), np.array([100, 100]), np.zeros(2, bool)) == 1
    # a much larger box touching the frame edge never replaces one that does not
    assert frigate_choice(np.array([0.9, 0.99]), np.array([100, 400]), np.array([False, True])) == 0


def test_summary_of_kept_crops() -> None:
    tracks = [_track([0.3, 0.2, 0.5]), _track([0.4, 0.41, 0.9])]
    summary = summarise("m", tracks, [0, 1])
    assert summary.mean_distance == pytest.approx((0.3 + 0.41) / 2)
    assert summary.mean_excess_over_oracle == pytest.approx((0.1 + 0.01) / 2)
    assert summary.within_5pct_rate == pytest.approx(0.5)  # 0.41 <= 1.05 * 0.4, 0.3 > 1.05 * 0.2


def test_random_is_reported_in_expectation() -> None:
    summary = summarise_random([_track([0.2, 0.4, 0.6])])
    assert summary.mean_distance == pytest.approx(0.4)
    assert summary.within_5pct_rate == pytest.approx(1 / 3)
