"""The Brevitas stage of `make verify-hw` only compares the bundle with its own training run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from snapseal.hw.verify import bundle_checkpoint  # noqa: E402
from snapseal.quantize.bundle_writer import checkpoint_mismatch  # noqa: E402


def _bundle(out: Path, loss: float, step: int = 140) -> SimpleNamespace:
    training = {"checkpoint": "last.pt", "hyper": {"out": str(out)}, "history": [{"step": step, "loss": loss}]}
    return SimpleNamespace(manifest={"training": training})


def _checkpoint(out: Path, loss: float, step: int = 140) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "last.pt"
    torch.save({"history": [{"step": step - 14, "loss": 0.0}, {"step": step, "loss": loss}]}, path)
    return path


def test_the_bundles_own_run_is_used(tmp_path):
    path = _checkpoint(tmp_path, -3908.6266566685267)
    bundle = _bundle(tmp_path, -3908.6266566685267)
    assert checkpoint_mismatch(path, bundle.manifest) is None
    assert bundle_checkpoint(bundle) == path


def test_a_retrain_at_the_same_path_is_skipped_with_the_reason(tmp_path, capsys):
    path = _checkpoint(tmp_path, -3934.6346609933034)
    bundle = _bundle(tmp_path, -3908.6266566685267)
    assert "loss" in checkpoint_mismatch(path, bundle.manifest)
    assert bundle_checkpoint(bundle) is None
    err = capsys.readouterr().err
    assert "is not the bundle's checkpoint" in err and "Brevitas stage is skipped" in err


def test_another_step_count_is_another_run(tmp_path):
    path = _checkpoint(tmp_path, -1.0, step=70)
    assert "step 70" in checkpoint_mismatch(path, _bundle(tmp_path, -1.0, step=140).manifest)
