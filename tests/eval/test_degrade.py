"""The degradation suite: deterministic, and each degradation really degrades."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from snapseal.eval.model import degrade as dg


def _synthetic_face_region(seed: int = 0) -> dg.FaceRegion:
    """A textured 'face' (ellipse, eyes, mouth, fine texture) on a 256-px source with margin."""
    rng = np.random.default_rng(seed)
    image = np.full((256, 256), 120, np.uint8)
    cv2.ellipse(image, (128, 128), (50, 64), 0, 0, 360, 190, -1)
    for x in (108, 148):
        cv2.circle(image, (x, 112), 7, 30, -1)
    cv2.line(image, (110, 160), (146, 160), 60, 3)
    texture = rng.normal(0.0, 10.0, (64, 64))
    texture = cv2.resize(texture, (256, 256), interpolation=cv2.INTER_LINEAR)
    image = np.clip(image + texture, 0, 255).astype(np.uint8)
    return dg.FaceRegion(image, (64.0, 64.0, 192.0, 192.0))


def _lapvar(crop: np.ndarray) -> float:
    return float(cv2.Laplacian(crop.astype(np.float64), cv2.CV_64F, ksize=1).var())


def test_every_degradation_is_deterministic_and_seed_dependent_where_random():
    region = _synthetic_face_region()
    for kind in dg.DEGRADATIONS:
        for level in dg.LEVELS:
            first = dg.degrade(region, kind, level, seed=3)
            again = dg.degrade(region, kind, level, seed=3)
            assert first.shape == (64, 64) and first.dtype == np.uint8
            assert np.array_equal(first, again), (kind, level)
    # random ones change with the seed
    for kind in ("motion", "noise", "occlusion", "offcentre"):
        assert not np.array_equal(dg.degrade(region, kind, 2, seed=1), dg.degrade(region, kind, 2, seed=2)), kind


def test_every_degradation_changes_the_crop_more_with_its_level():
    region = _synthetic_face_region()
    clean = dg.clean_crop(region).astype(np.float64)
    for kind in dg.DEGRADATIONS:
        errors = [np.abs(dg.degrade(region, kind, level, seed=0) - clean).mean() for level in dg.LEVELS]
        assert errors[0] > 0.5, (kind, errors)
        if kind not in ("occlusion", "offcentre"):  # random placement: not monotone per seed
            assert errors[0] < errors[1] < errors[2], (kind, errors)


@pytest.mark.parametrize("kind", ["blur", "motion", "downscale"])
def test_blurs_lower_laplacian_variance(kind):
    region = _synthetic_face_region()
    sharp = _lapvar(dg.clean_crop(region))
    values = [_lapvar(dg.degrade(region, kind, level)) for level in dg.LEVELS]
    assert all(v < sharp for v in values)
    assert values[2] < values[0]


def test_noise_raises_and_dark_lowers_what_they_should():
    region = _synthetic_face_region()
    clean = dg.clean_crop(region)
    noisy = dg.degrade(region, "noise", 3)
    residual = noisy.astype(np.float64) - clean
    assert 15.0 < residual.std() < 30.0  # level 3 is sigma 24 (less where it clips)
    dark = dg.degrade(region, "dark", 2)
    assert dark.mean() < 0.5 * clean.mean()
    assert dark.std() < clean.std()


def test_offcentre_moves_the_content():
    region = _synthetic_face_region()
    clean = dg.clean_crop(region).astype(np.float64)
    shifted = dg.degrade(region, "offcentre", 3).astype(np.float64)
    # the face's bright ellipse is no longer centred: centre of mass moves by > 5 px
    def centre(img):
        w = np.clip(img - 150, 0, None)
        ys, xs = np.mgrid[:64, :64]
        return np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()

    assert np.linalg.norm(centre(shifted) - centre(clean)) > 5.0


def test_bare_crop_region_gives_the_crop_back_and_degrades_it():
    crop = dg.clean_crop(_synthetic_face_region())
    region = dg.region_from_crop(crop)
    assert np.array_equal(dg.clean_crop(region), crop)
    assert _lapvar(dg.degrade(region, "blur", 2)) < _lapvar(crop)


def test_bad_arguments_are_refused():
    region = _synthetic_face_region()
    with pytest.raises(ValueError):
        dg.degrade(region, "sepia", 1)
    with pytest.raises(ValueError):
        dg.degrade(region, "blur", 4)
    with pytest.raises(ValueError):
        dg.region_from_crop(np.zeros((64, 64), np.float32))


def test_degrade_all_covers_every_kind_and_level():
    out = dg.degrade_all(_synthetic_face_region(), seed=0)
    assert set(out) == {(k, l) for k in dg.DEGRADATIONS for l in dg.LEVELS}
