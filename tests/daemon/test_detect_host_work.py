"""The per-crop host work, cut down without changing a single result: the FPGA's input packed
by a byte copy (8-bit pixels) and its outputs unpacked without bit planes, the same bytes and
integers as FINN's bit-plane layout; the noise term computed in integers over the batch, the
same float64 as the per-crop float64 filters; hence the same scores."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from snapseal.daemon.accel import fpga
from snapseal.daemon.scoring import features

ASSETS = Path(__file__).resolve().parents[2] / "build" / "assets"


def _crops() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    noise = rng.integers(0, 256, (16, 64, 64), dtype=np.uint8)
    smooth = np.stack([cv2.GaussianBlur(c, (7, 7), 2) for c in noise])
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (3, 64, 1))
    flat = np.full((2, 64, 64), 90, np.uint8)
    sets = [noise, smooth, ramp, flat, np.zeros((0, 64, 64), np.uint8)]
    path = ASSETS / "insightface" / "t1.jpg"
    if path.is_file():  # real faces: tiles of a group photo
        grey = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
        sets.append(np.stack([cv2.resize(grey[y:y + 120, x:x + 120], (64, 64)) for y in range(0, 300, 60)
                              for x in range(0, 500, 100)]))
    return sets


@pytest.mark.parametrize("keep_fraction", [0.5, 0.3, 0.77, 1.0, 0.0])
def test_noise_term_equals_the_float64_filters_bit_for_bit(keep_fraction):
    for crops in _crops():
        fast = features.flat_region_noise_sigma(crops, keep_fraction)
        reference = features.reference_flat_region_noise_sigma(crops, keep_fraction)
        assert fast.dtype == np.float64 and fast.shape == (len(crops),)
        assert np.array_equal(fast, reference)


def test_scores_are_unchanged(monkeypatch):
    from snapseal.daemon.scoring import load_scorer

    scorer = load_scorer()  # the committed bundle on the emulation backend
    crops = np.concatenate([c for c in _crops() if len(c) and c.max() - c.min() > 2])[:24]
    fast = scorer.score_batch(crops)
    monkeypatch.setattr(features, "flat_region_noise_sigma", features.reference_flat_region_noise_sigma)
    reference = scorer.score_batch(crops)
    assert np.array_equal(fast, reference)


def _bit_plane_pack(values: np.ndarray, dtype_name: str) -> np.ndarray:
    bits, _ = fpga.datatype_bits(dtype_name)
    return fpga._pack_bit_planes(np.asarray(values).astype(np.int64), bits)


@pytest.mark.parametrize("dtype_name", ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32"])
def test_byte_aligned_packing_is_the_bit_plane_layout(dtype_name):
    bits, signed = fpga.datatype_bits(dtype_name)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    rng = np.random.default_rng(bits + signed)
    values = rng.integers(low, high, (3, 4, 5, 7), dtype=np.int64, endpoint=True)
    values.flat[:2] = [low, high]
    packed = fpga.pack_finn(values, dtype_name)
    assert np.array_equal(packed, _bit_plane_pack(values, dtype_name))
    assert np.array_equal(fpga.unpack_finn(packed, dtype_name, values.shape), values)


def test_uint8_pixels_pack_as_themselves():
    crops = np.random.default_rng(5).integers(0, 256, (2, 64, 64, 1), dtype=np.uint8)
    packed = fpga.pack_finn(crops, "UINT8")
    assert packed.dtype == np.uint8 and np.array_equal(packed, crops)  # a byte copy
    assert np.array_equal(packed, _bit_plane_pack(crops, "UINT8"))
    with pytest.raises(Exception, match="range"):
        fpga.pack_finn(np.array([[256]]), "UINT8")
    with pytest.raises(Exception, match="range"):
        fpga.pack_finn(crops, "INT8")  # pixels above 127 do not fit a signed byte


WIDTHS = [(b, s) for b in (1, 2, 3, 4, 5, 7, 9, 12, 13, 17, 20, 24, 31, 33, 40) for s in (False, True) if b > 1 or not s]


@pytest.mark.parametrize("bits, signed", WIDTHS)
def test_unpacking_any_width_equals_the_bit_planes(bits, signed):
    name = ("BINARY" if bits == 1 else f"UINT{bits}") if not signed else f"INT{bits}"
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    rng = np.random.default_rng(bits * 2 + signed)
    for fold in (1, 3, 8, 11):
        values = rng.integers(low, high, (2, 3, fold), dtype=np.int64, endpoint=True)
        packed = _bit_plane_pack(values, name)
        assert np.array_equal(fpga.pack_finn(values, name), packed)
        fast = fpga.unpack_finn(packed, name, values.shape)
        reference = fpga._unpack_bit_planes(packed, bits, signed, fold).reshape(values.shape)
        assert np.array_equal(fast, reference) and np.array_equal(fast, values)
