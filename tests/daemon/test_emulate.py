"""The emulate backend (bundle QONNX graphs without torch) and the accelerator factory."""

from __future__ import annotations

import numpy as np
import pytest

from snapseal.daemon.accel import make_accelerator
from snapseal.daemon.accel.base import Accelerator
from snapseal.daemon.accel.emulate import EmulateAccelerator
from snapseal.daemon.bundle import load_bundle
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.likelihood import log_rp


@pytest.fixture(scope="module")
def bundle():
    return load_bundle()


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = (128 + 80 * np.sin(xx / 9.0) * np.cos(yy / 7.0)).astype(np.uint8)
    return np.stack([smooth, 255 - smooth] + [rng.integers(0, 256, (64, 64)).astype(np.uint8) for _ in range(4)])


@pytest.fixture(scope="module")
def emulate(bundle):
    return make_accelerator("emulate", bundle)



def _imports(*names: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in names)


# The ort/qonnx engines and the cpu backend need onnxruntime and qonnx; a PYNQ-Z2 (no onnxruntime
# for armv7l) and the Ultra96-V2 install (no qonnx) run the numpy engine instead.
NEEDS_ORT_AND_QONNX = pytest.mark.skipif(not _imports("onnxruntime", "qonnx"),
                                         reason="needs onnxruntime and qonnx (the numpy engine runs here)")

def _ints(values: np.ndarray, scale: float) -> np.ndarray:
    ints = values / scale
    np.testing.assert_array_equal(ints, np.round(ints))  # outputs are integers times the scale
    return ints.astype(np.int64)


def test_emulate_is_an_accelerator(emulate):
    assert isinstance(emulate, Accelerator)
    assert emulate.name == "emulate"


def test_shapes_and_ranges(emulate, bundle, crops):
    latent, dist = emulate.forward_at_mean(crops)
    n, d = len(crops), bundle.latent_dim
    assert latent.mu.shape == latent.log_sigma.shape == (n, d)
    assert dist.mu.shape == dist.log_sigma.shape == (n, 64, 64)
    assert np.all((dist.mu >= 0) & (dist.mu <= 1))
    assert np.all(dist.log_sigma >= np.float32(bundle.log_sigma_floor))
    raw = emulate.run_forward_at_mean_raw(crops)
    for name in ("mu_z", "log_sigma_z", "decoder_out"):
        spec = bundle.outputs[name]
        ints = _ints(raw[name], spec.scale)
        lo = -(2 ** (spec.bits - 1)) if spec.signed else 0
        assert ints.min() >= lo and ints.max() < 2 ** (spec.bits - (1 if spec.signed else 0))


@NEEDS_ORT_AND_QONNX
def test_ort_engine_is_bit_exact_with_qonnx_engine(bundle, crops):
    fast = EmulateAccelerator(bundle, engine="ort").run_forward_at_mean_raw(crops[:3])
    reference = EmulateAccelerator(bundle, engine="qonnx", batch_size=3).run_forward_at_mean_raw(crops[:3])
    for name in ("mu_z", "log_sigma_z", "decoder_out"):
        np.testing.assert_array_equal(fast[name], reference[name])


@NEEDS_ORT_AND_QONNX
def test_decode_engines_agree(bundle):
    z = np.random.default_rng(3).normal(size=(2, bundle.latent_dim)).astype(np.float32)
    fast = EmulateAccelerator(bundle, engine="ort").decode(z)
    reference = EmulateAccelerator(bundle, engine="qonnx", batch_size=2).decode(z)
    np.testing.assert_array_equal(fast.mu, reference.mu)
    np.testing.assert_array_equal(fast.log_sigma, reference.log_sigma)


def test_same_crop_same_score_and_batch_independent(emulate, bundle, crops):
    first = log_rp(crops, emulate.encode(crops), emulate.decode, bundle.epsilon)
    again = log_rp(crops, emulate.encode(crops), emulate.decode, bundle.epsilon)
    np.testing.assert_array_equal(first, again)
    alone = log_rp(crops[2:3], emulate.encode(crops[2:3]), emulate.decode, bundle.epsilon)
    np.testing.assert_array_equal(alone, first[2:3])  # no batch effects (eval-mode batch norm)
    assert np.all(np.isfinite(first))


def test_batching_does_not_change_results(bundle, crops):
    small = EmulateAccelerator(bundle, batch_size=2).run_forward_at_mean_raw(crops)
    large = EmulateAccelerator(bundle, batch_size=64).run_forward_at_mean_raw(crops)
    for name in small:
        np.testing.assert_array_equal(small[name], large[name])


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 32, 32), np.uint8),
        np.zeros((2, 64, 64), np.float32),
        np.zeros((64, 64), np.uint8),
        np.zeros((2, 64, 64, 3), np.uint8),
        [[0] * 64] * 64,
    ],
)
def test_wrong_crops_raise_snapseal_error(emulate, bad):
    with pytest.raises(SnapsealError, match="64 x 64 uint8|numpy array"):
        emulate.forward_at_mean(bad)
    with pytest.raises(SnapsealError):
        emulate.encode(bad)


def test_wrong_latents_raise_snapseal_error(emulate, bundle):
    with pytest.raises(SnapsealError):
        emulate.decode(np.zeros((2, bundle.latent_dim + 1), np.float32))
    with pytest.raises(SnapsealError):
        emulate.decode(np.full((1, bundle.latent_dim), np.nan, np.float32))


def test_factory_names(bundle):
    with pytest.raises(SnapsealError, match="known"):
        make_accelerator("gpu", bundle)
    with pytest.raises(SnapsealError):
        EmulateAccelerator(bundle, engine="nope")


@NEEDS_ORT_AND_QONNX
def test_cpu_backend_runs_the_same_bundle(bundle, crops):
    cpu = make_accelerator("cpu", bundle)
    latent, dist = cpu.forward_at_mean(crops)
    assert latent.mu.shape == (len(crops), bundle.latent_dim)
    assert dist.mu.shape == (len(crops), 64, 64)
    scores = log_rp(crops, latent, cpu.decode, bundle.epsilon)
    assert np.all(np.isfinite(scores))
    with pytest.raises(SnapsealError):
        cpu.forward_at_mean(np.zeros((1, 63, 64), np.uint8))
