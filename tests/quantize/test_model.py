"""The QAT VAE, its float twin, objectives and training (checkpoints, resume, reproducibility)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from snapseal.daemon.errors import SnapsealError  # noqa: E402
from snapseal.quantize import objectives  # noqa: E402
from snapseal.quantize.model import VAE, VAEConfig, format_size_table, log2_exact, model_size  # noqa: E402
from snapseal.quantize.train import TrainSettings, load_checkpoint, load_model, main, train  # noqa: E402

pytestmark = pytest.mark.build
SMALL = VAEConfig(widths=(4, 4, 8, 8, 8), latent_dim=8)


def test_config_validation():
    with pytest.raises(SnapsealError):
        VAEConfig(widths=(1, 2, 3))
    with pytest.raises(SnapsealError):
        VAEConfig(weight_bits=1)
    with pytest.raises(SnapsealError):
        VAEConfig(decoder_upsampling="bilinear")
    assert VAEConfig.from_dict(VAEConfig().to_dict()) == VAEConfig()


def test_default_size_fits_the_z7020_with_room():
    cfg = VAEConfig()
    size = model_size(cfg)
    z7020_kib = 140 * 36 * 1024 / 8 / 1024
    assert size.weight_kib < 0.5 * z7020_kib  # weights leave half the BRAM for buffers/thresholds
    assert size.weight_params == sum(p.numel() for n, p in VAE(cfg.float_twin()).named_parameters() if n.endswith("weight") and p.dim() == 4)
    assert "total" in format_size_table(cfg)


@pytest.mark.parametrize("upsampling", ["deconv", "nearest"])
@pytest.mark.parametrize("quantized", [True, False])
def test_forward_shapes(quantized: bool, upsampling: str):
    cfg = VAEConfig(**{**SMALL.to_dict(), "widths": SMALL.widths, "quantized": quantized, "decoder_upsampling": upsampling})
    vae = VAE(cfg)
    x = torch.randint(0, 256, (3, 1, 64, 64)).float()
    mu, log_sigma, out = vae(x)
    assert mu.shape == log_sigma.shape == (3, 8, 1, 1)
    assert out.shape == (3, 2, 64, 64)


def test_quantizers_use_power_of_two_scales_and_exact_pixels():
    vae = VAE(SMALL)
    vae.train()
    vae(torch.randint(0, 256, (4, 1, 64, 64)).float())
    vae.eval()
    pixels = torch.arange(256.0).repeat(16).view(1, 1, 64, 64)
    assert torch.equal(vae.encoder.input_quant(pixels), pixels)  # pixel p -> integer p, scale 1
    for name, module in vae.named_modules():
        if hasattr(module, "quant_weight") and hasattr(module, "weight"):
            scales = module.quant_weight().scale.detach().flatten().tolist()
            assert all(log2_exact(s) for s in scales), name


def test_float_twin_weights_load_into_the_quantized_model(tmp_path: Path):
    twin = VAE(SMALL.float_twin())
    quant = VAE(SMALL)
    missing, unexpected = quant.load_state_dict(twin.state_dict(), strict=False)
    assert not unexpected
    assert not [m for m in missing if m.endswith(("weight", "running_mean"))]


def test_objective_registry():
    assert "elbo" in objectives.OBJECTIVES
    with pytest.raises(SnapsealError, match="unknown objective"):
        objectives.get_objective("nope")

    @objectives.register("test_only_mse")
    def mse(model, pixels, step):
        _, _, out = model(pixels)
        return objectives.ObjectiveResult(loss=((torch.sigmoid(out[:, 0]) - pixels[:, 0] / 255) ** 2).mean())

    try:
        assert objectives.get_objective("test_only_mse") is mse
    finally:
        objectives.OBJECTIVES.pop("test_only_mse")


def test_elbo_kl_warmup():
    step = objectives.TrainStep(step=0, total_steps=10, kl_warmup_steps=4)
    assert objectives.kl_weight(step) == pytest.approx(0.25)
    assert objectives.kl_weight(objectives.TrainStep(9, 10, 4)) == 1.0
    vae = VAE(SMALL)
    result = objectives.elbo(vae, torch.randint(0, 256, (2, 1, 64, 64)).float(), step)
    assert torch.isfinite(result.loss) and result.loss.requires_grad


def _settings(out: Path, **kw) -> TrainSettings:
    base = dict(data="synthetic:24", out=out, epochs=2, batch_size=8, lr=0.005, config=SMALL, max_steps_per_epoch=2, progress=False)
    base.update(kw)
    return TrainSettings(**base)


def _weights(path: Path) -> dict:
    return load_checkpoint(path).model_state


@pytest.mark.slow
def test_training_is_reproducible_and_resumable(tmp_path: Path):
    full = train(_settings(tmp_path / "a"))
    again = train(_settings(tmp_path / "b"))
    wa, wb = _weights(full), _weights(again)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # stop after one epoch, resume to two: the same weights as the uninterrupted run
    train(_settings(tmp_path / "c", epochs=1))
    resumed = train(_settings(tmp_path / "c", epochs=2, resume=True))
    wc = _weights(resumed)
    assert all(torch.equal(wa[k], wc[k]) for k in wa)
    ckpt = load_checkpoint(resumed)
    assert ckpt.epoch == 2 and ckpt.optimizer_state is not None and len(ckpt.history) == 2
    assert (tmp_path / "c" / "epoch_001.pt").is_file()


@pytest.mark.slow
def test_corrupt_and_mismatched_checkpoints(tmp_path: Path):
    last = train(_settings(tmp_path / "run", epochs=1))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(last.read_bytes()[: 2000])
    with pytest.raises(SnapsealError, match="corrupt.pt"):
        load_checkpoint(corrupt)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SnapsealError, match="garbage.pt"):
        load_model(garbage)
    with pytest.raises(SnapsealError, match="last.pt"):
        load_model(last, VAEConfig(widths=(4, 4, 8, 8, 16), latent_dim=8))  # wrong shapes
    with pytest.raises(SnapsealError, match="last.pt"):
        train(_settings(tmp_path / "run", epochs=2, resume=True, config=VAEConfig(widths=(4, 4, 8, 8, 16), latent_dim=8)))


def test_cli_reports_errors_in_one_line(tmp_path: Path, capsys):
    assert main(["--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "missing.npz" in err and err.count("\n") == 1


def test_npz_with_regions_is_augmented_per_epoch(tmp_path: Path):
    from snapseal.quantize.train import TrainingData, epoch_crops

    rng = np.random.default_rng(0)
    regions = rng.integers(0, 256, (3, 128, 128)).astype(np.uint8)
    data = TrainingData(crops=rng.integers(0, 256, (3, 64, 64)).astype(np.uint8), regions=regions)
    e0 = epoch_crops(data, seed=0, epoch=0, augment_copies=2)
    assert e0.shape == (6, 64, 64) and e0.dtype == np.uint8
    np.testing.assert_array_equal(e0, epoch_crops(data, seed=0, epoch=0, augment_copies=2))
    assert not np.array_equal(e0, epoch_crops(data, seed=0, epoch=1, augment_copies=2))
