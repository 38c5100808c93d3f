"""`make help` lists every target from the one `## ...` line above it (Makefile, mk/*.mk)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TARGET = re.compile(r"^([a-z][a-z0-9-]*):(?!=)")


def _documented_targets() -> tuple[list[str], list[str]]:
    documented, undocumented = [], []
    for path in [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))]:
        previous = ""
        for line in path.read_text().splitlines():
            match = TARGET.match(line)
            if match:
                (documented if previous.startswith("## ") else undocumented).append(match.group(1))
            previous = line
    return documented, undocumented


def test_every_target_has_its_one_line():
    _, undocumented = _documented_targets()
    assert undocumented == [], f"targets without a '## what it does' line above them: {undocumented}"


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_help_lists_every_documented_target():
    text = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), "help"], capture_output=True,
                          text=True, check=True).stdout
    listed = set(re.findall(r"^  make (\S+)", text, re.M))
    documented, _ = _documented_targets()
    assert set(documented) <= listed
