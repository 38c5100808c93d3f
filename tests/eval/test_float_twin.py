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
