"""What a board installs (requirement sets) and the board-side acceptance path that runs here:
`snapseal selftest --backend fpga` on a bundle shaped as `make bitstream` writes it, through
the pynq stand-in of the ARM harness (eval/board/pynq_stub)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
STUB = REPO / "eval" / "board" / "pynq_stub"
# PyPI has no armv7l wheels for these (deploy/README.md): the PYNQ-Z2 takes them from its image.
NO_ARMV7L_WHEELS = {"numpy", "opencv-python", "opencv-python-headless", "onnxruntime", "pynacl", "cffi"}


def requirement_names(path: Path) -> tuple[list[str], list[str]]:
    """(options, package names) of a requirements file."""
    options, names = [], []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        spec = line.split(";", 1)[0].strip()
        assert "==" in spec, f"{path.name}: {line!r} is not pinned"
        names.append(spec.split("==", 1)[0].strip().lower().replace("_", "-"))
    return options, names


@pytest.mark.parametrize("arch", ["armhf", "arm64"])
def test_board_requirement_sets_are_binary_only_and_pinned(arch):
    options, names = requirement_names(REPO / "requirements" / f"board-{arch}.txt")
    assert "--only-binary :all:" in options  # nothing is ever compiled on a board
    assert len(names) == len(set(names))
    assert "ncnn" in names  # the NEON detector runtime with wheels for both CPUs


def test_pynq_z2_set_leaves_the_image_packages_to_the_image():
    _, names = requirement_names(REPO / "requirements" / "board-armhf.txt")
    assert NO_ARMV7L_WHEELS.isdisjoint(names)


def test_ultra96_set_brings_what_the_image_lacks():
    _, names = requirement_names(REPO / "requirements" / "board-arm64.txt")
    assert {"numpy", "opencv-python-headless", "onnxruntime", "pynacl"} <= set(names)


@pytest.fixture(scope="module")
def bitstream_bundle(tmp_path_factory) -> Path:
    from tests.deploy.conftest import make_bitstream_bundle

    return make_bitstream_bundle(tmp_path_factory.mktemp("bitstream"))


def selftest(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(STUB), "SNAPSEAL_PYNQ_STUB": "golden"}
    return subprocess.run([sys.executable, "-m", "snapseal.daemon.cli", "selftest", "--backend", "fpga", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_bitstream_bundle_passes_selftest_fpga_with_its_own_golden_vectors(bitstream_bundle):
    from snapseal.daemon.bundle import load_bundle

    bundle = load_bundle(bitstream_bundle)
    assert bundle.hardware_section is not None and bundle.golden_dir is not None
    result = selftest("--bundle", str(bitstream_bundle), "--limit", "16")
    assert result.returncode == 0, result.stderr
    assert "selftest PASS: backend fpga, 16 golden crops" in result.stdout


def test_selftest_fpga_fails_when_the_device_answers_other_integers(bitstream_bundle, tmp_path):
    """The stand-in answers with the bundle's vectors; compared with vectors that differ in one
    integer the selftest must say FAIL and name the output."""
    other = tmp_path / "golden"
    shutil.copytree(bitstream_bundle / "golden", other)
    meta = json.loads((other / "golden.json").read_text())
    expected = np.load(other / meta["expected"]["mu_z"])
    flat = expected.reshape(-1)
    flat[3] = flat[3] + 1 if flat[3] < np.iinfo(expected.dtype).max else flat[3] - 1
    np.save(other / meta["expected"]["mu_z"], expected)
    result = selftest("--bundle", str(bitstream_bundle), "--golden", str(other), "--limit", "16")
    assert result.returncode == 1
    assert "mu_z: 1 of 16 crops differ" in result.stdout and "selftest FAIL" in result.stdout


def test_selftest_fpga_on_a_bundle_without_bitstream_is_one_line(tmp_path):
    result = selftest()
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no FPGA bitstream" in result.stderr
