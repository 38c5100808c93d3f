"""``snapseal selftest``: the golden crops through a backend, integers compared (emulation here;
on a board the same command runs against the FPGA). Runs in both environments."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from snapseal.daemon.bundle import load_bundle
from snapseal.daemon.cli import main

GOLDEN = load_bundle().path / "golden"  # the bundle carries its own golden vectors


def _golden_for_default_bundle() -> dict:
    from snapseal.daemon.bundle import load_bundle

    if not (GOLDEN / "golden.json").is_file():
        pytest.skip("no golden vectors (make golden)")
    meta = json.loads((GOLDEN / "golden.json").read_text())
    if meta["model_id"] != load_bundle().model_id:
        pytest.skip("golden vectors are for another model (make golden)")
    return meta


def test_golden_vectors_are_small_and_complete():
    meta = _golden_for_default_bundle()
    crops = np.load(GOLDEN / "crops.npy")
    assert crops.dtype == np.uint8 and crops.shape[1:] == (64, 64)
    assert len(crops) == meta["crops"] >= 100
    for name, file in meta["expected"].items():
        values = np.load(GOLDEN / file)
        assert values.dtype in (np.int8, np.int16), name
        # whole rows for every crop, or a digest per crop (large outputs)
        assert len(values) == len(crops) or len(meta["digests"][name]) == len(crops), name
    assert sum(p.stat().st_size for p in GOLDEN.iterdir()) < 700_000


def test_selftest_emulate_passes_on_golden(capsys):
    _golden_for_default_bundle()
    code = main(["selftest", "--backend", "emulate", "--limit", "16"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "selftest PASS" in out and "0 of 16 crops differ" in out


def test_selftest_fails_on_a_changed_integer(tmp_path, capsys):
    meta = _golden_for_default_bundle()
    corrupt = tmp_path / "golden"
    shutil.copytree(GOLDEN, corrupt)
    name, file = next(iter(meta["expected"].items()))
    values = np.load(corrupt / file)
    values.flat[0] = values.flat[0] + 1 if values.flat[0] < np.iinfo(values.dtype).max else values.flat[0] - 1
    np.save(corrupt / file, values)
    code = main(["selftest", "--backend", "emulate", "--golden", str(corrupt), "--limit", "4"])
    out = capsys.readouterr().out
    assert code == 1 and "selftest FAIL" in out and f"{name}: " in out


def test_selftest_checks_every_crop_by_digest(tmp_path, capsys):
    meta = _golden_for_default_bundle()
    if not meta.get("digests"):
        pytest.skip("no digest-checked output")
    corrupt = tmp_path / "golden"
    shutil.copytree(GOLDEN, corrupt)
    name = next(iter(meta["digests"]))
    last = len(meta["digests"][name]) - 1  # a crop beyond the stored whole rows
    meta["digests"][name][last] = "0" * 64
    (corrupt / "golden.json").write_text(json.dumps(meta))
    code = main(["selftest", "--backend", "emulate", "--golden", str(corrupt)])
    out = capsys.readouterr().out
    assert code == 1 and f"{name}: 1 of {last + 1} crops differ" in out


def test_selftest_without_golden_is_a_clear_error(tmp_path, capsys):
    code = main(["selftest", "--golden", str(tmp_path / "nowhere")])
    assert code == 2 and "golden vectors not found" in capsys.readouterr().err
