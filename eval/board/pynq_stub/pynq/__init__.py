"""A stand-in for ``pynq`` for the ARM harness and the tests: no FPGA, the same API surface the
fpga backend uses (``Overlay``, ``allocate``, ``Clocks``) and FINN's IODMA register protocol.

When the input DMA is started it unpacks the input buffer, computes the accelerator's integer
outputs and packs them into the output buffers, as the bitstream would. What it computes
(environment variable ``SNAPSEAL_PYNQ_STUB``):

- ``golden`` (default): the bundle's own golden vectors — a crop that is one of the golden
  crops gets its expected integers (a correct bitstream); any other crop is an error. Needs
  nothing but numpy, so ``snapseal selftest --backend fpga`` runs on any CPU.
- ``zeros``: all-zero outputs, costing next to nothing (instruction counting of the host side).

The bundle is found from the bitstream's path (the directory above it holding manifest.json).
When eval/board/marks.py is importable, the stub's own work is counted in bucket "accel", so
the harness can leave the FPGA's work out of the ARM host's.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

try:
    from marks import stage as _stage
except ImportError:  # outside the harness
    from contextlib import nullcontext

    def _stage(name):
        return nullcontext()


__version__ = "0.0-stub"
IODMA_START, IODMA_ADDRESS, IODMA_BATCH = 0x00, 0x10, 0x1C
DONE_BIT, IDLE_BIT = 0x2, 0x4


class _Buffer(np.ndarray):
    device_address = 0

    def flush(self):
        pass

    def invalidate(self):
        pass

    def freebuffer(self):
        pass


_buffers: dict[int, _Buffer] = {}


def allocate(shape, dtype=np.uint8, **_):
    buffer = np.zeros(shape, dtype).view(_Buffer)
    buffer.device_address = 0x1000_0000 + 0x100_0000 * len(_buffers)
    _buffers[buffer.device_address] = buffer
    return buffer


class Clocks:
    fclk0_mhz = 100.0


class _Ip:
    def __init__(self, overlay: "Overlay", name: str) -> None:
        self._overlay, self._name = overlay, name

    def read(self, offset: int) -> int:
        return self._overlay._registers.get((self._name, offset), IDLE_BIT if offset == IODMA_START else 0)

    def write(self, offset: int, value: int) -> None:
        self._overlay._registers[(self._name, offset)] = int(value)
        if offset == IODMA_START and value & 1 and self._name in self._overlay._input_dma:
            with _stage("accel"):
                self._overlay._run()


class Overlay:
    def __init__(self, bitfile: str, download: bool = True, **_) -> None:
        from snapseal.daemon.accel import fpga

        self._fpga = fpga
        bundle_dir = next((p for p in Path(bitfile).resolve().parents if (p / "manifest.json").is_file()), None)
        if bundle_dir is None or not Path(bitfile).is_file():
            raise RuntimeError(f"{bitfile}: not a bitstream inside a bundle")
        manifest = json.loads((bundle_dir / "manifest.json").read_text())
        self._settings = fpga.DriverSettings(manifest["hardware"]["driver"], bundle_dir / "manifest.json")
        self._input_dma = set(self._settings.input_dma)
        self._registers: dict[tuple[str, int], int] = {}
        self._mode = os.environ.get("SNAPSEAL_PYNQ_STUB", "golden")
        self._golden: dict[str, int] = {}
        if self._mode == "golden":
            golden = bundle_dir / "golden"
            meta = json.loads((golden / "golden.json").read_text())
            crops = np.load(golden / "crops.npy")
            self._expected = {name: np.load(golden / file) for name, file in meta["expected"].items()}
            self._golden = {hashlib.sha256(c.tobytes()).hexdigest(): i for i, c in enumerate(crops)}
        elif self._mode != "zeros":
            raise RuntimeError(f"SNAPSEAL_PYNQ_STUB={self._mode!r}: expected golden or zeros")

    def __getattr__(self, name: str) -> _Ip:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Ip(self, name)

    def _run(self) -> None:
        s, fpga = self._settings, self._fpga
        dma = s.input_dma[0]
        batch = self._registers[(dma, IODMA_BATCH)]
        packed = np.asarray(_buffers[self._registers[(dma, IODMA_ADDRESS)]])[:batch]
        ints = fpga.unpack_finn(packed, s.input_dtype, (batch, *s.input_shape_folded[1:]))
        pixels = ints.reshape(batch, *s.input_shape_normal[1:])
        for name, dtype, folded, tail in zip(s.output_dma, s.output_dtypes, s.output_shapes_folded, s.tails):
            values = np.zeros((batch, *folded[1:]), np.int64)
            if self._mode == "golden":
                for row, crop in enumerate(pixels):
                    key = hashlib.sha256(np.ascontiguousarray(crop[..., 0], np.uint8).tobytes()).hexdigest()
                    index = self._golden.get(key)
                    expected = self._expected[tail["output_name"]]
                    if index is None or index >= len(expected):
                        raise RuntimeError("pynq stub (golden): crop is not one of the stored golden crops")
                    values[row] = expected[index].reshape(folded[1:])
            out = _buffers[self._registers[(name, IODMA_ADDRESS)]]
            out[:batch] = fpga.pack_finn(values, dtype)
            self._registers[(name, IODMA_START)] = DONE_BIT | IDLE_BIT
