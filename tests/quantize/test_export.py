"""Brevitas model == QONNX export executed without torch (emulate backend), bit for bit.

The model is a small config trained for a few steps (so batch-norm statistics and activation
scales are not trivial), exported and written as a bundle; the checks are the ones the default
model must pass: integer outputs identical, log RP of the torch reference == numpy definition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from snapseal.daemon.accel import make_accelerator  # noqa: E402
from snapseal.daemon.accel.emulate import EmulateAccelerator  # noqa: E402
from snapseal.daemon.bundle import load_bundle  # noqa: E402
from snapseal.daemon.scoring.likelihood import log_likelihood_at_mean, log_rp  # noqa: E402
from snapseal.quantize.bundle_writer import write_bundle  # noqa: E402
from snapseal.quantize.model import VAEConfig  # noqa: E402
from snapseal.quantize.reference import reference_log_likelihood_at_mean, reference_log_rp  # noqa: E402
from snapseal.quantize.train import TrainSettings, load_model, synthetic_crops, train  # noqa: E402

pytestmark = [pytest.mark.build, pytest.mark.slow]
CFG = VAEConfig(widths=(8, 8, 16, 16, 16), latent_dim=16)
REAL_VAL = Path(__file__).resolve().parents[2] / "build" / "data" / "bootstrap" / "val.npz"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("train")
    settings = TrainSettings(data="synthetic:64", out=out, epochs=2, batch_size=16, config=CFG, max_steps_per_epoch=3, progress=False)
    vae = load_model(train(settings))
    bundle = write_bundle(vae, tmp_path_factory.mktemp("bundle") / "b")
    return vae, bundle


@pytest.fixture(scope="module")
def test_crops() -> np.ndarray:
    """20 random + synthetic face-like crops, + real held-out crops when the bootstrap set exists."""
    rng = np.random.default_rng(11)
    parts = [rng.integers(0, 256, (10, 64, 64)).astype(np.uint8), synthetic_crops(10, seed=5),
             np.zeros((1, 64, 64), np.uint8), np.full((1, 64, 64), 255, np.uint8)]
    if REAL_VAL.is_file():
        with np.load(REAL_VAL) as data:
            parts.append(data["crops"][:10])
    return np.concatenate(parts)


def _brevitas(vae, crops):
    with torch.no_grad():
        mu, ls, out = vae.forward_at_mean(torch.from_numpy(crops.astype(np.float32)).unsqueeze(1))
    return {"mu_z": mu.numpy(), "log_sigma_z": ls.numpy(), "decoder_out": out.numpy()}


@pytest.mark.parametrize("engine", ["ort", "qonnx"])
def test_integer_outputs_identical_to_brevitas(trained, test_crops, engine):
    vae, bundle = trained
    crops = test_crops if engine == "ort" else test_crops[:6]
    emulated = EmulateAccelerator(bundle, engine=engine, batch_size=len(crops)).run_forward_at_mean_raw(crops)
    reference = _brevitas(vae, crops)
    for name, spec in bundle.outputs.items():
        ints_emulated = emulated[name] / spec.scale
        ints_reference = reference[name] / spec.scale
        np.testing.assert_array_equal(ints_emulated, np.round(ints_emulated))
        np.testing.assert_array_equal(ints_emulated, ints_reference)  # bit-exact, not approximately


def test_encoder_and_decoder_graphs_match_forward_at_mean(trained, test_crops):
    vae, bundle = trained
    emulate = EmulateAccelerator(bundle)
    latent, dist = emulate.forward_at_mean(test_crops)
    encoded = emulate.encode(test_crops)
    np.testing.assert_array_equal(latent.mu, encoded.mu)
    decoded = emulate.decode(encoded.mu)
    np.testing.assert_array_equal(dist.mu, decoded.mu)
    with torch.no_grad():
        z = torch.from_numpy(encoded.mu[:, :, None, None])
        ref = vae.decoder(z).numpy()
    np.testing.assert_array_equal(emulate._run("decoder", encoded.mu[:, :, None, None])["decoder_out"], ref)


def test_torch_reference_log_rp_equals_numpy_definition(trained, test_crops):
    vae, bundle = trained
    emulate = make_accelerator("emulate", bundle)
    numpy_scores = log_rp(test_crops, emulate.encode(test_crops), emulate.decode, bundle.epsilon)
    torch_scores = reference_log_rp(vae, test_crops, bundle.epsilon, bundle.log_sigma_floor)
    # same integers in and out; the only difference is sigmoid in float32 (numpy) vs float64
    np.testing.assert_allclose(numpy_scores, torch_scores, rtol=1e-6)
    at_mean = log_likelihood_at_mean(test_crops, emulate.forward_at_mean(test_crops)[1])
    np.testing.assert_allclose(at_mean, reference_log_likelihood_at_mean(vae, test_crops, bundle.log_sigma_floor), rtol=1e-6)


def test_epsilon_table_makes_scores_deterministic(trained, test_crops):
    vae, bundle = trained
    reloaded = load_bundle(bundle.path)
    np.testing.assert_array_equal(reloaded.epsilon, bundle.epsilon)
    emulate = make_accelerator("emulate", reloaded)
    first = log_rp(test_crops[:4], emulate.encode(test_crops[:4]), emulate.decode, reloaded.epsilon)
    second = log_rp(test_crops[:4], emulate.encode(test_crops[:4]), emulate.decode, reloaded.epsilon)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, reference_log_rp(vae, test_crops[:4], reloaded.epsilon, reloaded.log_sigma_floor), rtol=1e-6)


def test_manifest_records_scales_and_architecture(trained):
    vae, bundle = trained
    manifest = bundle.manifest
    assert manifest["architecture"] == CFG.to_dict()
    assert manifest["latent_dim"] == CFG.latent_dim
    assert bundle.outputs["decoder_out"].shape == (1, 2, 64, 64)
    assert bundle.decoder_input.bits == CFG.latent_bits
    for name in ("mu_z", "log_sigma_z"):
        assert bundle.outputs[name].shape == (1, CFG.latent_dim, 1, 1)
        assert bundle.outputs[name].bits == CFG.latent_bits
