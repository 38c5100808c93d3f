"""Board runtime profiles: one place (daemon/board_profiles.py), valid config keys for every
board hw/boards.py knows, and importable without numpy (install scripts read it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from snapseal.daemon import board_profiles
from snapseal.daemon.config import load_config
from snapseal.daemon.detect.runtimes import RUNTIMES
from snapseal.daemon.errors import SnapsealError

SOURCE = Path(board_profiles.__file__)


@pytest.mark.parametrize("name", sorted(board_profiles.RUNTIME_PROFILES))
def test_every_profile_is_a_valid_config(name):
    profile = board_profiles.runtime_profile(name)
    config = load_config(overrides=profile.config_overrides(), check_files=False)
    assert config.detector.runtime == profile.runtime in RUNTIMES
    assert config.detector.full_every == profile.full_every >= 1
    assert config.detector.min_face_px == profile.min_face_px
    assert config.quality.skip_near_duplicates == profile.skip_near_duplicates
    assert 1 <= profile.threads <= profile.cores
    assert profile.as_dict()["name"] == name


def test_the_fpga_boards_have_runtime_profiles_from_the_one_place():
    from snapseal.hw import boards

    for name, board in boards.BOARDS.items():
        assert board.runtime is board_profiles.RUNTIME_PROFILES[name]
    assert boards.RUNTIME_PROFILES is board_profiles.RUNTIME_PROFILES


def test_no_onnxruntime_on_armv7l():
    assert board_profiles.runtime_profile("pynq-z2").runtime != "onnxruntime"  # no armv7l wheels exist


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(SnapsealError, match="pynq-z2, ultra96-v2"):
        board_profiles.runtime_profile("zcu104")


def test_imports_only_the_standard_library():
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "dataclasses", "snapseal"}
    from_snapseal = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     and node.module and node.module.startswith("snapseal")}
    assert from_snapseal == {"snapseal.daemon.errors"}
