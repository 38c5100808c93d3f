"""Error-versus-reject curves (ERC), the protocol of Baert et al. section 5 / Grother & Tabassi.

Definition used here (one definition, everywhere in snapseal):

* Every genuine comparison (a probe against a reference of the same person) has an embedding
  distance d and a quality q (the probe's quality; when both sides vary, the lower of the two).
* The decision threshold t is fixed ONCE, before any rejection, so that the false non-match rate
  over all genuine comparisons equals the chosen *initial FNMR* (0.01 and 0.001 in the paper):
  t is the (1 - initial FNMR) quantile of the genuine distances; a comparison is a false
  non-match when d > t.
* Rejecting a fraction r of the comparisons means dropping the ceil-free count r * N with the
  LOWEST quality; FNMR(r) = false non-matches left / comparisons left. The threshold never moves.
* Ties in quality are broken at random, and we report the expected value over that draw (a
  tied group straddling the cut is rejected pro rata), so a constant score gives a flat curve
  and no method gains from the order of the input.
* ERC area = the integral of FNMR(r) over r in [0, 0.30] (trapezoid on a 0.001 grid), in units
  of FNMR x fraction; smaller is better. The PERFECT oracle (q = -d) reaches 0 at r = initial
  FNMR; a random score stays at the initial FNMR in expectation.

Impostor distances are not needed for FNMR; they give the false match rate at t, reported next
to each curve so the operating point is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_REJECT = 0.30
DEFAULT_GRID = np.round(np.arange(0.0, DEFAULT_MAX_REJECT + 1e-9, 0.001), 6)


def threshold_for_initial_fnmr(genuine_distances: np.ndarray, initial_fnmr: float) -> float:
    """The distance threshold t with fraction `initial_fnmr` of genuine distances above it."""
    distances = np.sort(np.asarray(genuine_distances, dtype=np.float64))
    if distances.size == 0:
        raise ValueError("no genuine comparisons")
    if not 0.0 < initial_fnmr < 1.0:
        raise ValueError(f"initial FNMR must be in (0, 1), got {initial_fnmr}")
    # The k largest distances are the false non-matches; t sits just below the k-th largest.
    false_non_matches = int(round(initial_fnmr * distances.size))
    if false_non_matches == 0:
        return float(distances[-1])  # too few comparisons to resolve this FNMR: nothing fails
    return float(distances[distances.size - false_non_matches - 1])


def fnmr_after_rejection(
    genuine_distances: np.ndarray,
    quality: np.ndarray,
    threshold: float,
    reject_fractions: np.ndarray = DEFAULT_GRID,
) -> np.ndarray:
    """Expected FNMR after dropping the lowest-quality fraction r, for every r given."""
    distances = np.asarray(genuine_distances, dtype=np.float64)
    quality = np.asarray(quality, dtype=np.float64)
    if distances.shape != quality.shape or distances.ndim != 1:
        raise ValueError("genuine_distances and quality must be 1-D and the same length")
    if not np.all(np.isfinite(quality)):
        raise ValueError("quality scores must be finite")
    count = distances.size
    is_error = (distances > threshold).astype(np.float64)

    # Group tied qualities; within a group rejection is pro rata (expected random tie-break).
    unique_quality, group_of = np.unique(quality, return_inverse=True)
    group_size = np.bincount(group_of, minlength=unique_quality.size).astype(np.float64)
    group_errors = np.bincount(group_of, weights=is_error, minlength=unique_quality.size)
    size_before = np.concatenate([[0.0], np.cumsum(group_size)])
    errors_before = np.concatenate([[0.0], np.cumsum(group_errors)])

    fractions = np.asarray(reject_fractions, dtype=np.float64)
    rejected = fractions * count
    curve = np.empty(fractions.size)
    for i, n_rejected in enumerate(rejected):
        if n_rejected >= count:
            curve[i] = np.nan
            continue
        # the group the cut falls in: first group whose cumulative size exceeds n_rejected
        g = int(np.searchsorted(size_before[1:], n_rejected, side="right"))
        partial = (n_rejected - size_before[g]) / group_size[g]
        errors_rejected = errors_before[g] + partial * group_errors[g]
        curve[i] = (errors_before[-1] - errors_rejected) / (count - n_rejected)
    return curve


def erc_area(reject_fractions: np.ndarray, curve: np.ndarray, max_reject: float = DEFAULT_MAX_REJECT) -> float:
    """Area under FNMR(r) for r in [0, max_reject] (trapezoid rule)."""
    fractions = np.asarray(reject_fractions, dtype=np.float64)
    values = np.asarray(curve, dtype=np.float64)
    keep = fractions <= max_reject + 1e-12
    return float(np.trapezoid(values[keep], fractions[keep]))


@dataclass(frozen=True)
class ErcResult:
    method: str
    initial_fnmr: float  # requested
    threshold: float
    achieved_initial_fnmr: float  # what the finite sample gives at r = 0
    fmr_at_threshold: float  # impostor distances <= t, for context (nan without impostors)
    reject_fractions: np.ndarray
    fnmr: np.ndarray
    area_to_30: float


def compute_erc(
    method: str,
    genuine_distances: np.ndarray,
    quality: np.ndarray,
    initial_fnmr: float,
    impostor_distances: np.ndarray | None = None,
    reject_fractions: np.ndarray = DEFAULT_GRID,
) -> ErcResult:
    threshold = threshold_for_initial_fnmr(genuine_distances, initial_fnmr)
    curve = fnmr_after_rejection(genuine_distances, quality, threshold, reject_fractions)
    if impostor_distances is not None and len(impostor_distances):
        fmr = float(np.mean(np.asarray(impostor_distances) <= threshold))
    else:
        fmr = float("nan")
    return ErcResult(
        method=method,
        initial_fnmr=initial_fnmr,
        threshold=threshold,
        achieved_initial_fnmr=float(curve[0]),
        fmr_at_threshold=fmr,
        reject_fractions=np.asarray(reject_fractions, dtype=np.float64),
        fnmr=curve,
        area_to_30=erc_area(reject_fractions, curve),
    )


def oracle_quality(genuine_distances: np.ndarray) -> np.ndarray:
    """PERFECT: rejects by the actual genuine distance (an upper bound no real score reaches)."""
    return -np.asarray(genuine_distances, dtype=np.float64)
