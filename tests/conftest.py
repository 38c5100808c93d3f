"""Shared test setup.

Tests that need torch/brevitas/FINN carry ``pytest.mark.build`` (the board environment
deselects them); tests that take more than ~20 s carry ``pytest.mark.slow`` and still run in CI.

What a test needs from `make data` or from a system tool is asked for through ``require_built``
and ``require_tool``: on a developer's checkout a missing piece skips the test with the command
that provides it; under CI (``CI`` set) it fails, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / "build"
ASSETS_DIR = BUILD_DIR / "assets"
BOOTSTRAP_DIR = BUILD_DIR / "data" / "bootstrap"


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must have it)", pytrace=False)
    pytest.skip(message)


def require_built(path: Path, target: str = "data") -> Path:
    """``path`` if it exists; else skip (locally) or fail (CI) naming the make target."""
    if not path.exists():
        _missing(f"{path} missing: run `make {target}`")
    return path


def require_tool(name: str, package: str) -> str:
    """The executable ``name`` on PATH; else skip (locally) or fail (CI) naming the package."""
    found = shutil.which(name)
    if found is None:
        _missing(f"{name} is missing: `apt-get install {package}` (.ci/run installs it)")
    return found  # type: ignore[return-value]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def assets() -> Path:
    """build/assets: the face photos and videos that packages ship (`make data`)."""
    return require_built(ASSETS_DIR / ".ready").parent


@pytest.fixture(scope="session")
def bootstrap() -> Path:
    """build/data/bootstrap: the bootstrap crops (`make data`)."""
    return require_built(BOOTSTRAP_DIR / ".ready").parent
