"""Fixtures for the deploy tests: a wheel, a stand-in PYNQ venv, bundles, keys, staged installs.

install.sh runs for real against a temporary root (``--root``): real venv, real pip install of
the wheel, real ``snapseal keygen --device``. The stand-in PYNQ venv is a Python 3.10 venv that
sees ``.venv/board``'s packages (numpy 1.x, PyNaCl, ...) and holds an empty ``pynq`` package,
so the FPGA path's checks and drop-in can be exercised without a board.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SH = REPO_ROOT / "deploy" / "install.sh"
BOARD_PYTHON = REPO_ROOT / ".venv" / "board" / "bin" / "python"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_install(*args: str | Path) -> Result:
    completed = subprocess.run(
        ["bash", str(INSTALL_SH), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its type, mode, owner, size, mtime and link target."""
    entries: dict[str, tuple] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        target = os.readlink(path) if path.is_symlink() else None
        entries[str(path.relative_to(root))] = (
            info.st_mode, info.st_uid, info.st_gid, info.st_size, info.st_mtime_ns, target,
        )
    return entries


def purelib(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    )
    return Path(out.stdout.strip())


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out_dir), str(REPO_ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (built,) = out_dir.glob("snapseal-*.whl")
    return built


@pytest.fixture(scope="session")
def pynq_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert BOARD_PYTHON.exists(), "the board environment .venv/board is missing: run `make env-board`"
    venv = tmp_path_factory.mktemp("pynq") / "pynq-venv"
    subprocess.run([str(BOARD_PYTHON), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = purelib(venv / "bin" / "python")
    (site / "board.pth").write_text(f"import site; site.addsitedir({str(purelib(BOARD_PYTHON))!r})\n")
    (site / "pynq" / "pl_server").mkdir(parents=True)
    (site / "pynq" / "__init__.py").write_text("")
    (site / "pynq" / "pl_server" / "__init__.py").write_text("")
    return venv


@pytest.fixture(scope="session")
def recipient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real investigator key pair, made as the investigator would (offline, off the camera)."""
    out_dir = tmp_path_factory.mktemp("investigator")
    subprocess.run(
        [sys.executable, "-m", "snapseal.daemon.cli", "keygen", "--out", str(out_dir)],
        check=True, capture_output=True, timeout=120,
    )
    assert (out_dir / "investigator.key").exists()
    return out_dir / "investigator.pub"


@pytest.fixture(scope="session")
def emulate_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("bundle-emulate")
    (bundle / "manifest.json").write_text(json.dumps({"format_version": 1, "model_id": "test"}))
    (bundle / "graph.onnx").write_bytes(b"\x08\x07")
    (bundle / "sub").mkdir()
    (bundle / "sub" / "eps.npy").write_bytes(b"eps")
    return bundle


FAKE_BITSTREAM = b"bitstream"  # no Vivado here: the .bit/.hwh content is fake, the bundle shape is real


def make_bitstream_bundle(out_dir: Path, board: str = "pynq-z2") -> Path:
    """A bundle as `make bitstream` writes it (``snapseal.hw.bitstream.assemble_bitstream_bundle``
    over the default bundle), with fake .bit/.hwh content and the golden driver settings."""
    from snapseal.daemon.bundle import load_bundle
    from snapseal.hw.bitstream import assemble_bitstream_bundle
    from snapseal.hw.boards import get_board

    default = load_bundle()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "accel.bit").write_bytes(FAKE_BITSTREAM)
    (out_dir / "accel.hwh").write_text("<hwh/>")
    driver = json.loads((default.golden_dir / "driver_settings.json").read_text())
    return assemble_bitstream_bundle(default.path, get_board(board), out_dir / "accel.bit", out_dir / "accel.hwh",
                                     driver, {}, out_dir / "out")


@pytest.fixture(scope="session")
def fpga_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bitstream_bundle(tmp_path_factory.mktemp("bundle-fpga"))


NCNN_FILES = ("pnet.param", "pnet.bin", "rnet.param", "rnet.bin", "onet.param", "onet.bin")


def base_args(root: Path, bundle: Path, recipient: Path, wheel: Path, pynq_venv: Path) -> list:
    """install.sh's arguments for a staged Pynq-Z2 install (its profile runs ncnn: stand-in
    weights, which install.sh only copies)."""
    weights = _session_ncnn_weights()
    return ["--board", "pynq-z2", "--bundle", bundle, "--recipient", recipient, "--wheel", wheel,
            "--pynq-venv", pynq_venv, "--root", root, "--camera-id", "cam-07", "--ncnn-weights", weights]


_NCNN_WEIGHTS: list[Path] = []


def _session_ncnn_weights() -> Path:
    """One stand-in ncnn weights folder for the whole test session."""
    if not _NCNN_WEIGHTS:
        import tempfile

        weights = Path(tempfile.mkdtemp(prefix="mtcnn-ncnn-"))
        for name in NCNN_FILES:
            (weights / name).write_bytes(f"fake {name}\n".encode())
        _NCNN_WEIGHTS.append(weights)
    return _NCNN_WEIGHTS[0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory, emulate_bundle, recipient, wheel, pynq_venv) -> tuple[Path, Result]:
    """One staged install shared by the read-only assertions of a module."""
    root = tmp_path_factory.mktemp("root")
    result = run_install(*base_args(root, emulate_bundle, recipient, wheel, pynq_venv))
    assert result.returncode == 0, result.stderr
    return root, result


def copy_root(src: Path, dest: Path) -> Path:
    """A copy of a staged root that keeps modes, owners and symlinks (cp -a)."""
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    return dest


def system_units_into(root: Path) -> None:
    """systemd-analyze --root needs the stock units (sysinit.target, ...) under the root."""
    stock = Path("/usr/lib/systemd/system")
    dest = root / "usr" / "lib" / "systemd" / "system"
    if not dest.exists():
        shutil.copytree(stock, dest, symlinks=True)
