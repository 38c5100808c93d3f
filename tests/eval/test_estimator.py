"""eval/model/estimator.py's agreement measures (pure numpy)."""

from __future__ import annotations

import numpy as np


def test_same_best_rate_and_pick_rank():
    from snapseal.eval.model.estimator import pick_rank, same_best_rate

    reference = np.array([1.0, 3.0, 2.0, 0.0, 5.0, 4.0])
    groups = [np.arange(0, 3), np.arange(3, 6)]
    assert same_best_rate(reference, reference, groups) == 1.0 and pick_rank(reference, reference, groups) == 0.0
    other = np.array([9.0, 3.0, 2.0, 0.0, 5.0, 4.0])  # picks the reference's worst in group 0
    assert same_best_rate(other, reference, groups) == 0.5
    assert pick_rank(other, reference, groups) == 0.5  # (1.0 + 0.0) / 2
