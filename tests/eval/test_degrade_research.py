"""The measuring tools around the degradation suite: baselines, the ranking test, the
candidates' formula, the synthetic-negative objective."""

from __future__ import annotations

import numpy as np
import pytest

from snapseal.eval.model import degrade as dg
from snapseal.eval.model import ranking


def _face_like(seed: int) -> dg.FaceRegion:
    import cv2

    rng = np.random.default_rng(seed)
    image = np.full((256, 256), 110, np.uint8)
    cv2.ellipse(image, (128, 128), (48, 62), 0, 0, 360, 185, -1)
    cv2.circle(image, (110, 114), 7, 35, -1)
    cv2.circle(image, (146, 114), 7, 35, -1)
    texture = cv2.resize(rng.normal(0, 12, (64, 64)), (256, 256))
    return dg.FaceRegion(np.clip(image + texture, 0, 255).astype(np.uint8), (64.0, 64.0, 192.0, 192.0))


def test_pair_fractions_count_right_wrong_and_ties():
    rset = ranking.build_ranking_set([_face_like(0), _face_like(1)], ["a", "b"], progress=False)
    clean = rset.kind == ranking.CLEAN
    perfect = np.where(clean, 1.0, 0.0)
    assert ranking.pair_fractions(perfect, rset)["min"] == 1.0
    assert ranking.pair_fractions(-perfect, rset)["all"] == 0.0
    assert ranking.pair_fractions(np.zeros(len(clean)), rset)["all"] == 0.5


def test_identity_split_keeps_people_apart():
    identities = ["a", "a", "b", "c", "c", "c", "d"]
    folds = ranking.identity_split(identities, folds=2, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(identities)))
    people = [{identities[i] for i in fold} for fold in folds]
    assert not people[0] & people[1]


def test_laplacian_variance_drops_with_blur():
    from snapseal.eval.model import baselines

    region = _face_like(2)
    crops = np.stack([dg.clean_crop(region), dg.degrade(region, "blur", 2)])
    lap = baselines.laplacian_variance(crops)
    assert lap[0] > 2 * lap[1]


def test_brisque_works_under_numpy_2_and_prefers_the_sharp_crop():
    pytest.importorskip("brisque")
    from snapseal.eval.model import baselines

    region = _face_like(3)
    crops = np.stack([dg.clean_crop(region), dg.degrade(region, "blur", 3)])
    scores = baselines.brisque(crops)
    assert np.all(np.isfinite(scores)) and scores[0] > scores[1]
    # repeatable up to BLAS rounding (its SVM and root finder run on multi-threaded LAPACK)
    np.testing.assert_allclose(baselines.brisque(crops), scores, rtol=1e-6)


@pytest.mark.build
def test_synthetic_negatives_degrade_every_third_and_stay_in_range():
    import torch

    from snapseal.quantize.objectives import OBJECTIVES, synthetic_negatives

    torch.manual_seed(0)
    pixels = torch.from_numpy(np.stack([dg.clean_crop(_face_like(i)) for i in range(6)]).astype(np.float32))[:, None]
    negatives = synthetic_negatives(pixels)
    assert negatives.shape == pixels.shape
    assert float(negatives.min()) >= 0 and float(negatives.max()) <= 255
    assert torch.equal(negatives, torch.round(negatives))
    changed = (negatives - pixels).abs().flatten(1).mean(1)
    assert bool((changed > 1.0).all())
    assert "elbo_negatives" in OBJECTIVES
