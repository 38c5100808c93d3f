"""Accelerator backends behind one Protocol (``base.Accelerator``): fpga, emulate, cpu.

``make_accelerator(name, bundle)`` is the only way the daemon picks one. Backends are imported
lazily by module name, so a missing ``pynq`` (the fpga backend) never breaks the others.
"""

from __future__ import annotations

import importlib
from typing import Any

from snapseal.daemon.accel.base import Accelerator, Latent, PixelDist
from snapseal.daemon.errors import SnapsealError

# backend name -> (module, class)
BACKENDS: dict[str, tuple[str, str]] = {
    "emulate": ("snapseal.daemon.accel.emulate", "EmulateAccelerator"),
    "cpu": ("snapseal.daemon.accel.cpu", "CpuAccelerator"),
    "fpga": ("snapseal.daemon.accel.fpga", "FpgaAccelerator"),
}


def make_accelerator(name: str, bundle: Any, **options: Any) -> Accelerator:
    """Build backend `name` over a loaded ``snapseal.daemon.bundle.Bundle``."""
    if name not in BACKENDS:
        raise SnapsealError(f"unknown accelerator backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    module_name, class_name = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except (ImportError, OSError) as exc:  # e.g. pynq missing or without a device
        raise SnapsealError(f"accelerator backend {name!r} is not available here ({exc})") from None
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise SnapsealError(f"accelerator backend {name!r}: {module_name} has no {class_name}") from None
    return cls(bundle, **options)


__all__ = ["Accelerator", "BACKENDS", "Latent", "PixelDist", "make_accelerator"]
