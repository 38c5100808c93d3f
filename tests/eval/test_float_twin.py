"""The float twin behind the Accelerator protocol gives the torch reference's scores."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.build


def test_float_twin_adapter_matches_the_torch_reference() -> None:
    torch = pytest.importorskip("torch")
    from snapseal.daemon.accel.base import Accelerator
    from snapseal.daemon.scoring.likelihood import LOG_SIGMA_FLOOR, epsilon_table
    from snapseal.daemon.scoring.paper import PaperScorer
    from snapseal.eval.vae_variants import PaperAtMeanScorer, TorchFloatAccelerator
    from snapseal.quantize.model import VAEConfig, build_vae
    from snapseal.quantize.reference import reference_log_likelihood_at_mean, reference_log_rp

    torch.manual_seed(0)
    config = VAEConfig(widths=(8, 8, 8, 8, 8), latent_dim=4).float_twin()
    vae = build_vae(config).eval()
    crops = np.random.default_rng(0).integers(0, 256, size=(3, 64, 64), dtype=np.uint8)
    accel = TorchFloatAccelerator(vae, LOG_SIGMA_FLOOR)
    assert isinstance(accel, Accelerator)
    eps = epsilon_table(config.latent_dim, samples=4)

    paper = PaperScorer(accel, eps, "test").score_batch(crops)
    assert paper == pytest.approx(reference_log_rp(vae, crops, eps), rel=1e-5)
    at_mean = PaperAtMeanScorer(accel, "test").score_batch(crops)
    assert at_mean == pytest.approx(reference_log_likelihood_at_mean(vae, crops), rel=1e-5)


def test_vae_methods_hold_the_deployed_default_its_ablations_and_a_labelled_float_twin() -> None:
    from snapseal.daemon.scoring import load_scorer
    from snapseal.eval.methods import ProbeBatch
    from snapseal.eval.vae_variants import WithoutVaeTerm, vae_methods

    found = vae_methods(float_checkpoint=None)
    names = [m.name for m in found.methods]
    assert any(n.startswith("VAE default score (complexity), 4-bit, emulate") for n in names)
    assert "VAE ablation: default without the VAE term (host terms only)" in names
    assert any("without the sharpness term" in n for n in names)
    crops = np.random.default_rng(1).integers(40, 200, size=(4, 64, 64), dtype=np.uint8)
    default = load_scorer(backend="emulate")
    parts = default.components(crops)
    np.testing.assert_allclose(WithoutVaeTerm(default).score_batch(crops), parts["score"] - parts["loglik_bits"])
    batch = ProbeBatch(crops, np.ones(4), np.zeros(4, bool), np.ones(4))
    deployed = next(m for m in found.methods if m.name.startswith("VAE default score (complexity), 4-bit, emulate"))
    np.testing.assert_allclose(deployed.score(batch), default.score_batch(crops))
