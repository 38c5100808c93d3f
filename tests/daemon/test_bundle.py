"""The accelerator bundle: verification of every file's sha256, format version, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from snapseal.daemon.bundle import DEFAULT_BUNDLE_DIR, FORMAT_VERSION, MANIFEST, load_bundle, write_manifest
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.likelihood import epsilon_table


@pytest.fixture()
def bundle_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE_DIR, dst)
    return dst


def _manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text())


def test_default_bundle_loads_and_is_complete():
    bundle = load_bundle()
    assert bundle.manifest["format_version"] == FORMAT_VERSION
    assert set(bundle.graphs) == {"encoder", "decoder", "forward_at_mean"}
    assert all(p.is_file() for p in bundle.graphs.values())
    assert bundle.epsilon.shape == (bundle.manifest["epsilon"]["samples"], bundle.latent_dim)
    for spec in bundle.outputs.values():
        assert spec.scale > 0 and float(np.log2(spec.scale)).is_integer()  # power-of-two scales
    assert bundle.model_id and bundle.default_scorer
    assert isinstance(bundle.scorers, dict)


def test_epsilon_table_is_reproducible_from_its_seed():
    """The stored table equals the generator's output here too (numpy 1.x on the board, 2.x)."""
    bundle = load_bundle()
    info = bundle.manifest["epsilon"]
    np.testing.assert_array_equal(bundle.epsilon, epsilon_table(bundle.latent_dim, info["samples"], info["seed"]))


@pytest.mark.parametrize("name", ["decoder.onnx", "encoder.onnx", "forward_at_mean.onnx", "epsilon.npy"])
def test_tampered_file_is_refused_naming_it(bundle_copy: Path, name: str):
    data = bytearray((bundle_copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle_copy / name).write_bytes(bytes(data))
    with pytest.raises(SnapsealError, match=name.replace(".", r"\.")):
        load_bundle(bundle_copy)


def test_missing_file_is_refused_naming_it(bundle_copy: Path):
    (bundle_copy / "decoder.onnx").unlink()
    with pytest.raises(SnapsealError, match=r"decoder\.onnx"):
        load_bundle(bundle_copy)


def test_bad_json_and_missing_manifest(bundle_copy: Path, tmp_path: Path):
    (bundle_copy / MANIFEST).write_text("{not json")
    with pytest.raises(SnapsealError, match=r"manifest\.json"):
        load_bundle(bundle_copy)
    with pytest.raises(SnapsealError, match="not found"):
        load_bundle(tmp_path / "nowhere")


def test_wrong_format_version(bundle_copy: Path):
    manifest = _manifest(bundle_copy)
    manifest["format_version"] = FORMAT_VERSION + 1
    (bundle_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SnapsealError, match="format version"):
        load_bundle(bundle_copy)


def test_manifest_edit_without_rehash_is_caught(bundle_copy: Path):
    manifest = _manifest(bundle_copy)
    manifest["files"]["decoder.onnx"] = "0" * 64
    (bundle_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SnapsealError, match=r"decoder\.onnx"):
        load_bundle(bundle_copy)


def test_file_outside_bundle_is_refused(bundle_copy: Path):
    manifest = _manifest(bundle_copy)
    manifest["files"]["../escape.bin"] = "0" * 64
    (bundle_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SnapsealError, match="outside the bundle"):
        load_bundle(bundle_copy)


def test_malformed_manifest_field(bundle_copy: Path):
    manifest = _manifest(bundle_copy)
    del manifest["outputs"]["decoder_out"]
    (bundle_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SnapsealError, match="decoder_out"):
        load_bundle(bundle_copy)


def test_write_manifest_adds_hardware_files(bundle_copy: Path):
    """What hw/ does: add files and a hardware section, re-hash, and the bundle verifies."""
    (bundle_copy / "hw").mkdir()
    (bundle_copy / "hw" / "design.bit").write_bytes(b"\x00\x01bitstream")
    manifest = write_manifest(bundle_copy, {**_manifest(bundle_copy), "hardware": {"board": "pynq-z2", "bitstream": "hw/design.bit"}})
    assert "hw/design.bit" in manifest["files"]
    bundle = load_bundle(bundle_copy)
    assert bundle.hardware["board"] == "pynq-z2"
    assert bundle.file("hw/design.bit").read_bytes().endswith(b"bitstream")
    (bundle_copy / "hw" / "design.bit").write_bytes(b"other")
    with pytest.raises(SnapsealError, match=r"design\.bit"):
        load_bundle(bundle_copy)
