"""deploy/install.sh is shellcheck clean (and parses as bash)."""

from __future__ import annotations

import subprocess

from tests.conftest import require_tool
from tests.deploy.conftest import INSTALL_SH


def test_install_sh_is_shellcheck_clean():
    shellcheck = require_tool("shellcheck", "shellcheck")
    result = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(INSTALL_SH)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_install_sh_parses_and_prints_usage():
    assert subprocess.run(["bash", "-n", str(INSTALL_SH)]).returncode == 0
    result = subprocess.run(["bash", str(INSTALL_SH), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("usage: install.sh --board pynq-z2|ultra96-v2")


def test_unknown_argument_is_one_line():
    result = subprocess.run(["bash", str(INSTALL_SH), "--bored", "x"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["install.sh: error: unknown argument '--bored' (see --help)"]
