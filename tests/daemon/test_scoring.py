"""The scorers and their factory, on the committed default bundle (numpy/cv2 only: board env)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import require_built

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring import DEFAULT_SCORER, load_scorer, resolve_scorer_name
from snapseal.daemon.scoring import features, likelihood
from snapseal.daemon.scoring.base import Scorer
from snapseal.daemon.scoring.complexity import ComplexityParams
from snapseal.daemon.scoring.inputs import UNIFORM_SCORE

REPO = Path(__file__).resolve().parents[2]
VAL_DIR = REPO / "build" / "data" / "bootstrap"


@pytest.fixture(scope="module")
def default_scorer():
    return load_scorer()


@pytest.fixture(scope="module")
def paper_scorer():
    return load_scorer(scorer="paper")


def _textured_crops(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(0.4, 0.6, 2)
        face = 60 + 140 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.08) + rng.normal(0, 3, (64, 64))
        out.append(np.clip(face, 0, 255))
    return np.stack(out).astype(np.uint8)


def test_factory_builds_the_default_and_the_paper_scorer(default_scorer, paper_scorer):
    assert isinstance(default_scorer, Scorer) and isinstance(paper_scorer, Scorer)
    assert default_scorer.name == DEFAULT_SCORER
    assert paper_scorer.name == "paper"
    assert default_scorer.model_id == paper_scorer.model_id != ""
    # the bundle's own choice is honoured; a bundle that names none gets the measured default
    assert resolve_scorer_name("default", "paper") == "paper"
    assert resolve_scorer_name("default", None) == DEFAULT_SCORER
    assert resolve_scorer_name(None, "complexity") == "complexity"
    assert resolve_scorer_name("paper", "complexity") == "paper"


def test_committed_bundle_names_the_measured_default_with_its_constants():
    from snapseal.daemon.bundle import load_bundle
    from snapseal.daemon.scoring.complexity import ComplexityParams

    bundle = load_bundle()
    assert bundle.default_scorer == DEFAULT_SCORER == "complexity"
    assert ComplexityParams.from_manifest(bundle.scorers["complexity"], "manifest") == ComplexityParams()
    assert bundle.scorers["paper"]["samples"] == len(bundle.epsilon)


def test_factory_refuses_unknown_names_backends_and_bundles(tmp_path):
    with pytest.raises(SnapsealError, match="unknown scorer"):
        load_scorer(scorer="sharpest")
    with pytest.raises(SnapsealError, match="backend"):
        load_scorer(backend="gpu")
    with pytest.raises(SnapsealError):
        load_scorer(tmp_path / "no-bundle")


def test_bad_scorer_constants_in_the_manifest_are_refused():
    with pytest.raises(SnapsealError, match="noise_floor"):
        ComplexityParams.from_manifest({"noise_floor": -1}, "manifest.json")
    with pytest.raises(SnapsealError):
        ComplexityParams.from_manifest("fast", "manifest.json")
    assert ComplexityParams.from_manifest({"noise_floor": 2, "formula": "text"}, "m").noise_floor == 2.0


def test_a_manifest_from_before_the_sharpness_term_scores_without_it():
    old = {"noise_floor": 3.0, "noise_weight": 1.5, "contrast_floor": 40.0, "exposure_weight": 1.0}
    assert ComplexityParams.from_manifest(old, "m").sharpness_weight == 0.0
    assert ComplexityParams.from_manifest({**old, "sharpness_weight": 0.25}, "m").sharpness_weight == 0.25
    assert ComplexityParams().sharpness_weight > 0  # the measured default uses it


@pytest.mark.parametrize("name", ["default", "paper"])
def test_scores_are_deterministic_and_finite(name, default_scorer, paper_scorer):
    scorer = default_scorer if name == "default" else paper_scorer
    crops = _textured_crops(5)
    first = scorer.score_batch(crops)
    again = scorer.score_batch(crops.copy())
    one_by_one = np.array([scorer.score_batch(c[None])[0] for c in crops])
    assert first.dtype == np.float64 and first.shape == (5,)
    assert np.all(np.isfinite(first))
    assert np.array_equal(first, again)
    np.testing.assert_allclose(one_by_one, first, rtol=0, atol=1e-6)
    fresh = load_scorer(scorer=scorer.name).score_batch(crops)
    assert np.array_equal(fresh, first)


def test_paper_scorer_is_likelihood_log_rp(paper_scorer):
    crops = _textured_crops(3, seed=1)
    accel = paper_scorer.accel
    expected = likelihood.log_rp(crops, accel.encode(crops), accel.decode, paper_scorer.epsilon)
    assert paper_scorer.epsilon.shape[0] == 10  # the paper's L
    np.testing.assert_array_equal(paper_scorer.score_batch(crops), expected)


def test_default_score_is_the_sum_of_its_components(default_scorer):
    crops = _textured_crops(3, seed=2)
    parts = default_scorer.components(crops)
    total = (parts["loglik_bits"] + parts["png_bits"] - parts["noise_bits"] - parts["exposure_bits"]
             + parts["sharpness_bits"])
    np.testing.assert_allclose(parts["score"], total)
    _, dist = default_scorer.accel.forward_at_mean(crops)
    np.testing.assert_allclose(parts["loglik_bits"], likelihood.gaussian_log_likelihood(crops, dist) / math.log(2))
    np.testing.assert_array_equal(parts["png_bits"], features.png_bits(crops))
    weight = default_scorer.params.sharpness_weight
    np.testing.assert_allclose(parts["sharpness_bits"], weight * 4096 * np.log2(features.laplacian_variance(crops)))


def test_sharpness_term_charges_a_blurred_copy_and_nothing_else(default_scorer):
    import cv2
    from dataclasses import replace

    from snapseal.daemon.scoring.complexity import ComplexityScorer

    sharp = _textured_crops(2, seed=3)
    blurred = np.stack([cv2.GaussianBlur(c, (0, 0), 2.0) for c in sharp])
    crops = np.concatenate([sharp, blurred])
    without = ComplexityScorer(default_scorer.accel, "m", replace(default_scorer.params, sharpness_weight=0.0))
    with_term = ComplexityScorer(default_scorer.accel, "m", replace(default_scorer.params, sharpness_weight=0.25))
    a, b = without.components(crops), with_term.components(crops)
    assert np.all(a["sharpness_bits"] == 0.0)
    for key in ("loglik_bits", "png_bits", "noise_bits", "exposure_bits"):
        np.testing.assert_array_equal(a[key], b[key])
    # the blurred copy's Laplacian variance is far lower: it gets fewer bonus bits than its source
    assert np.all(b["sharpness_bits"][2:] < b["sharpness_bits"][:2])
    gap_without = a["score"][:2] - a["score"][2:]
    gap_with = b["score"][:2] - b["score"][2:]
    assert np.all(gap_with > gap_without)


@pytest.mark.parametrize("level", [0, 128, 255])
def test_uniform_crops_get_the_low_score_and_a_flag(level, default_scorer, paper_scorer):
    crops = np.concatenate([np.full((1, 64, 64), level, np.uint8), _textured_crops(1)])
    for scorer in (default_scorer, paper_scorer):
        parts = scorer.components(crops)
        assert parts["score"][0] == UNIFORM_SCORE and parts["uniform"][0] == 1.0
        assert parts["uniform"][1] == 0.0 and parts["score"][1] > UNIFORM_SCORE
        assert all(np.all(np.isfinite(v)) for v in parts.values())


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 64, 64), np.float32),
        np.zeros((2, 32, 32), np.uint8),
        np.zeros((2, 1, 64, 64), np.uint8),
        np.zeros((64, 64, 3), np.uint8),
        [[0] * 64] * 64,
    ],
    ids=["float32", "32px", "nchw", "colour", "list"],
)
def test_wrong_shapes_and_dtypes_raise_snapseal_error(bad, default_scorer, paper_scorer):
    for scorer in (default_scorer, paper_scorer):
        with pytest.raises(SnapsealError):
            scorer.score_batch(bad)


def test_noise_and_exposure_terms_react_to_what_they_measure():
    crops = _textured_crops(1, seed=3)
    rng = np.random.default_rng(0)
    noisy = np.clip(crops + rng.normal(0, 12, crops.shape), 0, 255).astype(np.uint8)
    assert features.flat_region_noise_sigma(noisy)[0] > 3 * features.flat_region_noise_sigma(crops)[0]
    assert features.contrast((crops // 4).astype(np.uint8))[0] < features.contrast(crops)[0] / 3


# ---------------------------------------------------------------------------------------------
# The honest test: real held-out faces (build/data/bootstrap, `make data`), every degradation.


def _val_ranking_set():
    require_built(VAL_DIR / "val_sources.npz")
    from snapseal.eval.model import measure, ranking

    regions, identities = measure.load_val_regions(VAL_DIR)
    return ranking.build_ranking_set(regions, identities, seed=0, progress=False), ranking


def test_default_score_ranks_clean_faces_above_every_degradation(default_scorer):
    rset, ranking = _val_ranking_set()
    fractions = ranking.pair_fractions(default_scorer.score_batch(rset.crops), rset)
    failing = {k: round(v, 2) for k, v in fractions.items() if k not in ("all", "min") and v < 0.9}
    assert not failing, f"default score orders < 90% of (clean, degraded) pairs right for {failing}"


class _BrokenAccelerator:
    """Outputs NaN, as a corrupt graph or a failing FPGA transfer might."""

    name = "broken"

    def forward_at_mean(self, crops):
        from snapseal.daemon.accel.base import Latent, PixelDist

        n = len(crops)
        nan = np.full((n, 64, 64), np.nan, np.float32)
        return Latent(np.zeros((n, 4), np.float32), np.zeros((n, 4), np.float32)), PixelDist(nan, nan)

    def encode(self, crops):
        return self.forward_at_mean(crops)[0]

    def decode(self, z):
        return self.forward_at_mean(np.zeros((len(z), 64, 64), np.uint8))[1]


def test_a_broken_accelerator_never_yields_a_silent_score():
    from snapseal.daemon.scoring.complexity import ComplexityScorer
    from snapseal.daemon.scoring.paper import PaperScorer

    crops = _textured_crops(2)
    with pytest.raises(SnapsealError, match="non-finite"):
        ComplexityScorer(_BrokenAccelerator(), "m").score_batch(crops)
    with pytest.raises(SnapsealError, match="non-finite"):
        PaperScorer(_BrokenAccelerator(), np.zeros((10, 4), np.float32), "m").score_batch(crops)
