"""daemon/ runs on the board: Python 3.10, numpy 1.x, and never the workstation-only stack.

- vermin finds no syntax or stdlib newer than 3.10 in daemon/;
- every daemon file compiles under .venv/board's Python 3.10;
- every ``snapseal.daemon`` module imports under .venv/board (numpy 1.x), none skipped;
- no daemon module imports torch, brevitas, FINN, ``snapseal.quantize``, ``snapseal.hw``,
  ``snapseal.eval`` or ``snapseal.investigator``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DAEMON_DIR = REPO_ROOT / "daemon"
BOARD_PYTHON = REPO_ROOT / ".venv" / "board" / "bin" / "python"
# The camera ships daemon/ only: no training or FINN stack, no evaluation, no investigator tools
# (they hold the private keys a camera must never have).
FORBIDDEN = ("torch", "torchvision", "brevitas", "finn", "snapseal.quantize", "snapseal.hw", "snapseal.eval",
             "snapseal.investigator")
# Modules that cannot import on the board env on purpose, each with its reason. Empty: the
# FPGA backend must import pynq lazily, inside the code that touches the board.
IMPORT_EXCEPTIONS: dict[str, str] = {}


def daemon_files() -> list[Path]:
    files = sorted(p for p in DAEMON_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    assert files, "no daemon sources found"
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(DAEMON_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["snapseal", "daemon", *parts])


def board_python() -> Path:
    assert BOARD_PYTHON.exists(), "the board environment .venv/board is missing: run `make env-board`"
    return BOARD_PYTHON


def test_vermin_finds_nothing_newer_than_3_10():
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    assert vermin, "vermin is missing: it is in requirements/test.txt (make env)"
    # tomllib is imported only behind `except ModuleNotFoundError: import tomli` (the brief's
    # rule); the import test below proves the fallback works on 3.10.
    result = subprocess.run([vermin, "--target=3.10-", "--no-tips", "--violations", "--exclude", "tomllib",
                             str(DAEMON_DIR)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_daemon_file_compiles_on_python_3_10():
    script = (
        "import sys, json\n"
        "assert sys.version_info[:2] == (3, 10), sys.version\n"
        "bad = []\n"
        "for path in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        compile(open(path, encoding='utf-8').read(), path, 'exec', dont_inherit=True)\n"
        "    except SyntaxError as error:\n"
        "        bad.append(f'{path}:{error.lineno}: {error.msg}')\n"
        "print('\\n'.join(bad)); sys.exit(bool(bad))\n"
    )
    paths = json.dumps([str(p) for p in daemon_files()])
    result = subprocess.run([str(board_python()), "-c", script, paths], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_daemon_module_imports_with_numpy_1():
    # A __main__.py runs the CLI when imported (argparse exits): it is compiled above, and
    # everything it imports is one of the modules imported here.
    modules = [module_name(p) for p in daemon_files() if p.name != "__main__.py"]
    script = (
        "import importlib, json, sys, traceback\n"
        "import numpy\n"
        "assert numpy.__version__.startswith('1.'), numpy.__version__\n"
        "failed = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException as error:\n"
        "        failed[name] = f'{type(error).__name__}: {error}'\n"
        "print(json.dumps(failed))\n"
    )
    result = subprocess.run([str(board_python()), "-c", script, json.dumps(modules)], capture_output=True,
                            text=True, timeout=600, cwd="/")
    assert result.returncode == 0, result.stderr
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    unexpected = {name: why for name, why in failed.items() if name not in IMPORT_EXCEPTIONS}
    assert not unexpected, "\n".join(f"{name}: {why}" for name, why in unexpected.items())
    stale = set(IMPORT_EXCEPTIONS) - set(failed)
    assert not stale, f"these import fine now: drop them from IMPORT_EXCEPTIONS: {sorted(stale)}"


def imported_names(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports: import statements (relative ones resolved), and
    importlib.import_module / __import__ calls with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.append((node.lineno, target))
            names += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                names.append((node.lineno, node.args[0].value))
    return names


def forbidden(name: str) -> bool:
    return any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)


def test_daemon_never_imports_the_workstation_stack():
    offenders = [f"{path.relative_to(REPO_ROOT)}:{line}: {name}"
                 for path in daemon_files() for line, name in imported_names(path) if forbidden(name)]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("source, expected", [
    ("import torch.nn as nn\n", True),
    ("from brevitas.nn import QuantConv2d\n", True),
    ("from finn.core import onnx_exec\n", True),
    ("from ... import quantize\n", True),          # snapseal.quantize, from daemon/x/y.py
    ("from snapseal.hw import flow\n", True),
    ("from snapseal.investigator.open import open_record\n", True),
    ("from snapseal.eval.scenes import walkby\n", True),
    ("importlib.import_module('torch')\n", True),
    ("import qonnx.core.modelwrapper\n", False),   # qonnx is allowed on the board
    ("from .. import errors\n", False),
    ("import torchaudio_free_name\n", False),
])
def test_layering_scan_catches_what_it_should(tmp_path, source, expected, monkeypatch):
    fake = DAEMON_DIR / "accel" / "_layering_probe.py"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    assert any(forbidden(name) for _, name in imported_names(fake)) is expected
