"""Pose-like warps: a real crop changes more with every level, stays 64x64 uint8."""

from __future__ import annotations

import numpy as np
import pytest

from snapseal.eval.warps import POSE_WARPS, pose_warp
from snapseal.eval.model.degrade import clean_crop, region_from_crop


@pytest.fixture(scope="module")
def region(repo_root):
    from snapseal.quantize.data.bootstrap import load_bootstrap

    crops = load_bootstrap("val", repo_root / "build" / "data" / "bootstrap").crops
    return region_from_crop(crops[0])


@pytest.mark.parametrize("kind", POSE_WARPS)
def test_stronger_warp_moves_the_crop_further(region, kind) -> None:
    clean = clean_crop(region).astype(float)
    changes = []
    for level in (1, 2, 3):
        warped = pose_warp(region, kind, level)
        assert warped.shape == (64, 64) and warped.dtype == np.uint8
        changes.append(np.abs(warped - clean).mean())
    assert 0 < changes[0] < changes[1] < changes[2]


def test_unknown_warp_is_an_error(region) -> None:
    with pytest.raises(ValueError):
        pose_warp(region, "pitch", 1)
    with pytest.raises(ValueError):
        pose_warp(region, "yaw", 4)
