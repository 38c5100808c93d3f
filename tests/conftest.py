"""Shared test setup.

Tests that need torch/brevitas/FINN carry ``pytest.mark.build`` (the board environment
deselects them); tests that take more than ~20 s carry ``pytest.mark.slow`` and still run in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / "build"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
