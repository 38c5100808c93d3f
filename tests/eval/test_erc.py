"""ERC math on hand-made distances whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from snapseal.eval.erc import (
    DEFAULT_GRID,
    compute_erc,
    erc_area,
    fnmr_after_rejection,
    oracle_quality,
    threshold_for_initial_fnmr,
)


def _genuine(count: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(4.0, 0.1, size=count)


def test_threshold_gives_the_requested_initial_fnmr() -> None:
    distances = _genuine()
    for initial in (0.01, 0.1):
        threshold = threshold_for_initial_fnmr(distances, initial)
        assert np.mean(distances > threshold) == pytest.approx(initial)


def test_hand_computed_curve() -> None:
    # 10 comparisons, the two largest distances fail at FNMR 0.2; quality puts one of them last.
    distances = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    quality = np.array([5, 6, 7, 8, 9, 10, 11, 12, 13, 0.0])
    threshold = threshold_for_initial_fnmr(distances, 0.2)
    assert threshold == pytest.approx(0.8)
    curve = fnmr_after_rejection(distances, quality, threshold, np.array([0.0, 0.1, 0.2]))
    # r=0: 2/10; r=0.1 drops the 1.0 (an error): 1/9; r=0.2 drops the 0.1 too: 1/8
    assert curve == pytest.approx([0.2, 1 / 9, 1 / 8])


def test_perfect_quality_gives_the_oracle_curve() -> None:
    distances = _genuine()
    initial = 0.05
    result = compute_erc("oracle", distances, oracle_quality(distances), initial)
    r = result.reject_fractions
    # FNMR(r) = (initial - r) / (1 - r) until every error is gone, then 0
    expected = np.clip((initial - r) / (1 - r), 0, None)
    assert result.fnmr == pytest.approx(expected, abs=1e-12)


def test_reversed_quality_is_worse_than_random_and_oracle_is_best() -> None:
    distances = _genuine()
    oracle = compute_erc("oracle", distances, oracle_quality(distances), 0.05)
    worst = compute_erc("worst", distances, distances, 0.05)
    rng = np.random.default_rng(1)
    random_areas = [compute_erc("random", distances, rng.random(distances.size), 0.05).area_to_30 for _ in range(20)]
    assert oracle.area_to_30 < np.mean(random_areas) < worst.area_to_30


def test_random_quality_stays_flat_in_expectation() -> None:
    distances = _genuine(2000)
    rng = np.random.default_rng(2)
    curves = np.stack(
        [fnmr_after_rejection(distances, rng.random(distances.size), threshold_for_initial_fnmr(distances, 0.05))
         for _ in range(200)]
    )
    mean_curve = curves.mean(axis=0)
    assert np.max(np.abs(mean_curve - 0.05)) < 0.004


def test_constant_quality_is_exactly_flat() -> None:
    # Ties are rejected pro rata: a score that says nothing cannot gain from input order.
    distances = _genuine()
    result = compute_erc("constant", distances, np.zeros_like(distances), 0.01)
    assert result.fnmr == pytest.approx(np.full(DEFAULT_GRID.size, 0.01))
    assert result.area_to_30 == pytest.approx(0.01 * 0.30)


def test_area_of_a_known_curve() -> None:
    fractions = np.linspace(0, 0.5, 501)
    assert erc_area(fractions, 1.0 - fractions) == pytest.approx(0.3 - 0.045)


def test_fmr_is_reported_from_impostors() -> None:
    genuine = _genuine()
    impostor = np.array([0.0, 10.0, 10.0, 10.0])
    result = compute_erc("x", genuine, np.zeros_like(genuine), 0.01, impostor_distances=impostor)
    assert result.fmr_at_threshold == pytest.approx(0.25)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        fnmr_after_rejection(np.zeros(3), np.zeros(4), 0.5)
    with pytest.raises(ValueError):
        threshold_for_initial_fnmr(np.zeros(3), 0.0)
