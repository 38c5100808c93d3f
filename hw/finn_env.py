"""Import FINN on a machine without Vivado (FINN's builder raises without XILINX_VIVADO).

finn-plus raises ``OSError: XILINX_VIVADO environment variable not set`` when its builder is
imported: the lazy RTL-simulation names in ``finn.xsi`` are resolved on import. Blanking them,
pointing ``FINN_BUILD_DIR`` at our build tree and creating dummy settings lets every
transformation and the estimate-only steps run. Call :func:`boot_finn` before importing any
``finn.builder`` / ``finn.transformation`` module.
"""

from __future__ import annotations

import os
from pathlib import Path

_BOOTED: dict[str, Path] = {}


def boot_finn(build_dir: Path) -> None:
    """Make FINN importable; idempotent. ``build_dir`` receives FINN's temporary files."""
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(build_dir)
    if "dir" in _BOOTED:
        return
    import finn.xsi as finn_xsi

    if not os.environ.get("XILINX_VIVADO"):
        # Without Vivado the simulator bindings do not exist; blank them so imports succeed.
        for lazy_name in finn_xsi._LAZY_NAMES:
            setattr(finn_xsi, lazy_name, None)
    from finn.util import settings

    settings.initialize_dummy_settings()
    _BOOTED["dir"] = build_dir
