"""The package list in pyproject.toml covers every subpackage folder.

Editable installs find subpackages without the list; a wheel (what `make deploy` copies to a
board) does not, so a folder missing from the list would vanish on the camera.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
