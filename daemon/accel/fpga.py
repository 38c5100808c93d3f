"""The ``fpga`` backend: the bundle's FINN bitstream on a PYNQ board, FINN's driver protocol.

What one call does (as FINN's Zynq driver template ``driver_base.py`` does it):

1. crops (N x 64 x 64 uint8) -> the accelerator's input: NHWC integers, folded to the first
   layer's stream shape, bit-packed (:func:`pack_finn`, FINN's ``finnpy_to_packed_bytearray``
   with ``reverse_endian=True, reverse_inner=True``), copied into a ``pynq.allocate`` buffer;
2. every output IODMA gets its buffer address (reg 0x10) and the batch size (0x1C) and is
   started (0x00 <- 1), then every input IODMA; the host polls until each output IODMA
   reports done (0x00 bit 1), sleeping ``POLL_INTERVAL_S`` between polls (FINN's driver
   spins; sleeping lets the frame loop run while the FPGA computes);
3. output buffers -> unpacked integers (:func:`unpack_finn`) -> the host tails recorded by the
   build (scale, layout: ``daemon/accel/host_tail.py``) -> the graph's float outputs
   (mu_z, log_sigma_z, decoder_out), bit-identical to the emulation backend.

All hardware access goes through :class:`FpgaDevice` (allocate a buffer, flush/invalidate it,
read/write an IP's register). :class:`PynqDevice` implements it with ``pynq`` on a board; tests
use a fake device that computes the outputs with the emulation graph. The FPGA computes only
the forward-at-mean graph (one bitstream), so ``decode`` (host-sampled z, the L-sample
reference) runs in emulation.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from snapseal.daemon.accel.base import Latent, PixelDist
from snapseal.daemon.accel.host_tail import apply_tail
from snapseal.daemon.errors import SnapsealError

IODMA_START = 0x00  # ap_ctrl: bit 0 start, bit 1 done, bit 2 idle
IODMA_ADDRESS = 0x10
IODMA_BATCH = 0x1C
DONE_BIT = 0x2
IDLE_BIT = 0x4
# Between polls of a DMA's done bit the host sleeps this long: it releases the GIL and the CPU,
# so a batch running on the FPGA (called from the chooser's scoring thread) costs the frame
# loop's detection nothing; a batch takes milliseconds, this adds at most 0.1 ms to it.
POLL_INTERVAL_S = 1e-4
BUILD_HINT = "build one with `make bitstream BOARD=pynq-z2` (or BOARD=ultra96-v2) on a machine with Vivado"


# --------------------------------------------------------------------------- FINN datatypes
def datatype_bits(name: str) -> tuple[int, bool]:
    """FINN DataType name -> (bit width, signed). Integer types only (what the IODMAs carry)."""
    if name == "BINARY":
        return 1, False
    if name == "BIPOLAR":
        raise SnapsealError("fpga backend: BIPOLAR streams are not supported")
    for prefix, signed in (("UINT", False), ("INT", True)):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return int(name[len(prefix) :]), signed
    raise SnapsealError(f"fpga backend: unsupported stream datatype {name!r}")


def pack_finn(values: np.ndarray, dtype_name: str) -> np.ndarray:
    """Folded integers (..., fold) -> packed bytes (..., ceil(fold*bits/8)) uint8.

    FINN's layout (``finnpy_to_packed_bytearray(reverse_endian=True, reverse_inner=True)``):
    element i of the innermost vector occupies bits [i*bits, (i+1)*bits) of one little-endian
    integer, two's complement for signed types. For 8-, 16- and 32-bit types that is each
    element's little-endian bytes in order: a byte copy (the camera's 8-bit pixels are the
    common case), with no bit planes; other widths go through bit planes. Both give the
    same bytes (tested).
    """
    bits, signed = datatype_bits(dtype_name)
    ints = np.asarray(values)
    if not np.issubdtype(ints.dtype, np.integer):
        if not np.all(ints == np.round(ints)):
            raise SnapsealError(f"fpga backend: non-integer values for a {dtype_name} stream")
        ints = ints.astype(np.int64)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if bits in _BYTE_TYPES:
        code = _BYTE_TYPES[bits][1 if signed else 0]
        if ints.dtype != np.dtype(code) or ints.dtype.byteorder == ">":  # uint8 pixels: no range check needed
            if ints.size and (ints.min() < low or ints.max() > high):
                raise SnapsealError(f"fpga backend: values outside {dtype_name} range [{low}, {high}]")
            ints = ints.astype(code)
        return np.ascontiguousarray(ints).view(np.uint8).reshape(*ints.shape[:-1], ints.shape[-1] * (bits // 8))
    ints = ints.astype(np.int64)
    if ints.size and (ints.min() < low or ints.max() > high):
        raise SnapsealError(f"fpga backend: values outside {dtype_name} range [{low}, {high}]")
    return _pack_bit_planes(ints, bits)


def _pack_bit_planes(ints: np.ndarray, bits: int) -> np.ndarray:
    """Any bit width: one bit plane per bit, then packbits (FINN's reference arithmetic)."""
    codes = (ints & ((1 << bits) - 1)).astype(np.uint64)
    bit_planes = ((codes[..., None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    flat = bit_planes.reshape(*ints.shape[:-1], ints.shape[-1] * bits)
    n_bytes = -(-flat.shape[-1] // 8)
    pad = n_bytes * 8 - flat.shape[-1]
    if pad:
        flat = np.concatenate([flat, np.zeros((*flat.shape[:-1], pad), np.uint8)], axis=-1)
    return np.packbits(flat, axis=-1, bitorder="little")


# little-endian numpy types of the byte-aligned widths: (unsigned, signed)
_BYTE_TYPES = {8: ("<u1", "<i1"), 16: ("<u2", "<i2"), 32: ("<u4", "<i4")}


def unpack_finn(packed: np.ndarray, dtype_name: str, folded_shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`pack_finn`: packed bytes -> folded integers (int64) of ``folded_shape``.

    8-, 16- and 32-bit types are read as little-endian integers (a view); other widths up to
    56 bits as one 64-bit little-endian word per element, shifted and masked; no bit planes.
    Same integers as the bit-plane form (tested)."""
    bits, signed = datatype_bits(dtype_name)
    fold = int(folded_shape[-1])
    packed = np.asarray(packed, dtype=np.uint8)
    if bits in _BYTE_TYPES:
        code = _BYTE_TYPES[bits][1 if signed else 0]
        raw = np.ascontiguousarray(packed[..., : fold * (bits // 8)])
        return raw.view(code).astype(np.int64).reshape(folded_shape)
    if bits > 56:
        return _unpack_bit_planes(packed, bits, signed, fold).reshape(folded_shape)
    offsets = np.arange(fold, dtype=np.int64) * bits
    padded = np.concatenate([packed, np.zeros((*packed.shape[:-1], 8), np.uint8)], axis=-1)
    gathered = np.ascontiguousarray(padded[..., (offsets // 8)[:, None] + np.arange(8)])  # ... x fold x 8
    words = gathered.view("<u8")[..., 0]
    values = ((words >> (offsets % 8).astype(np.uint64)) & np.uint64((1 << bits) - 1)).astype(np.int64)
    if signed:
        values = np.where(values >= (1 << (bits - 1)), values - (1 << bits), values)
    return values.reshape(folded_shape)


def _unpack_bit_planes(packed: np.ndarray, bits: int, signed: bool, fold: int) -> np.ndarray:
    bit_planes = np.unpackbits(packed, axis=-1, bitorder="little")[..., : fold * bits]
    bit_planes = bit_planes.reshape(*packed.shape[:-1], fold, bits).astype(np.int64)
    values = (bit_planes << np.arange(bits, dtype=np.int64)).sum(axis=-1)
    if signed:
        values = np.where(values >= (1 << (bits - 1)), values - (1 << bits), values)
    return values


# --------------------------------------------------------------------------- device boundary
class FpgaDevice(Protocol):
    """The only things the backend asks of the hardware."""

    def allocate(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A DMA-able buffer (numpy-like, with ``.device_address``)."""
        ...

    def flush(self, buffer: Any) -> None:
        """Host writes -> visible to the FPGA."""
        ...

    def invalidate(self, buffer: Any) -> None:
        """FPGA writes -> visible to the host."""
        ...

    def write_register(self, ip_name: str, offset: int, value: int) -> None: ...

    def read_register(self, ip_name: str, offset: int) -> int: ...


class PynqDevice:
    """FpgaDevice on a PYNQ board: loads the bitstream (+ .hwh next to it) and sets the clock."""

    def __init__(self, bitfile: Path, clock_mhz: float | None = None) -> None:
        try:
            import pynq
        except ImportError:
            raise SnapsealError(
                "fpga backend needs the `pynq` package (a PYNQ board image); use backend "
                "'emulate' on other machines"
            ) from None
        try:
            self.overlay = pynq.Overlay(str(bitfile))
        except Exception as exc:  # pynq raises RuntimeError("No Devices Found") and others
            raise SnapsealError(f"{bitfile}: cannot load the bitstream ({exc})") from None
        if clock_mhz:
            try:
                pynq.Clocks.fclk0_mhz = float(clock_mhz)
            except Exception as exc:
                raise SnapsealError(f"{bitfile}: cannot set the PL clock to {clock_mhz} MHz ({exc})") from None
        self._allocate = pynq.allocate

    def allocate(self, shape, dtype):
        return self._allocate(shape=tuple(shape), dtype=dtype)

    def flush(self, buffer) -> None:
        buffer.flush()

    def invalidate(self, buffer) -> None:
        buffer.invalidate()

    def write_register(self, ip_name: str, offset: int, value: int) -> None:
        getattr(self.overlay, ip_name).write(offset, int(value))

    def read_register(self, ip_name: str, offset: int) -> int:
        return int(getattr(self.overlay, ip_name).read(offset))


# --------------------------------------------------------------------------- driver settings
class DriverSettings:
    """The bundle's ``hardware.driver`` section: stream shapes, datatypes, host tails."""

    def __init__(self, settings: dict[str, Any], where: Path) -> None:
        try:
            self.input_dtype = str(settings["idt"][0])
            self.input_shape_normal = tuple(int(s) for s in settings["ishape_normal"][0])
            self.input_shape_folded = tuple(int(s) for s in settings["ishape_folded"][0])
            self.input_shape_packed = tuple(int(s) for s in settings["ishape_packed"][0])
            self.output_dtypes = [str(d) for d in settings["odt"]]
            self.output_shapes_normal = [tuple(int(s) for s in shape) for shape in settings["oshape_normal"]]
            self.output_shapes_folded = [tuple(int(s) for s in shape) for shape in settings["oshape_folded"]]
            self.output_shapes_packed = [tuple(int(s) for s in shape) for shape in settings["oshape_packed"]]
            self.input_dma = [str(n) for n in settings.get("idma_names", ["idma0"])]
            self.output_dma = [str(n) for n in settings.get("odma_names", [f"odma{i}" for i in range(len(self.output_dtypes))])]
            self.tails = list(settings["output_tails"])
            self.output_names = [str(t["output_name"]) for t in self.tails]
            self.max_batch = int(settings.get("max_batch", 1))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SnapsealError(f"{where}: malformed hardware.driver settings ({exc.__class__.__name__}: {exc})") from None
        if len(self.output_dma) != len(self.output_dtypes) or len(self.tails) != len(self.output_dtypes):
            raise SnapsealError(f"{where}: hardware.driver lists {len(self.output_dtypes)} outputs but "
                                f"{len(self.output_dma)} DMAs and {len(self.tails)} tails")
        for dtype in [self.input_dtype, *self.output_dtypes]:
            datatype_bits(dtype)


def hardware_files(bundle) -> tuple[Path, dict[str, Any]]:
    """(bitfile path, driver settings) of a bundle, or a SnapsealError saying how to build them.

    The hardware section itself (daemon/bundle.py, ``HardwareSection``) is validated once, by
    ``load_bundle``; this only says what is missing for the fpga backend."""
    section = getattr(bundle, "hardware_section", None)
    if section is None:
        where = Path(bundle.path) / "manifest.json"
        raise SnapsealError(f"{where}: bundle has no FPGA bitstream (manifest 'hardware' section names no bitfile); "
                            f"{BUILD_HINT}")
    bit_path = bundle.file(section.bitfile)
    bundle.file(section.hwh)
    return bit_path, section.driver


# --------------------------------------------------------------------------- the backend
class FpgaAccelerator:
    """Accelerator backend on the FPGA (forward_at_mean, encode) + emulation (decode)."""

    name = "fpga"

    def __init__(self, bundle, device: FpgaDevice | None = None, batch_size: int | None = None,
                 timeout_s: float = 5.0, **emulate_options: Any) -> None:
        bitfile, driver = hardware_files(bundle)
        self.bundle = bundle
        self.settings = DriverSettings(driver, Path(bundle.path) / "manifest.json")
        self.batch_size = max(1, int(batch_size or self.settings.max_batch))
        self.timeout_s = timeout_s
        self.device: FpgaDevice = device if device is not None else PynqDevice(bitfile, bundle.hardware_section.clock_mhz)
        self._emulate_options = emulate_options
        self._emulator = None
        s = self.settings
        self.input_buffer = self.device.allocate((self.batch_size, *s.input_shape_packed[1:]), np.uint8)
        self.output_buffers = [self.device.allocate((self.batch_size, *shape[1:]), np.uint8) for shape in s.output_shapes_packed]

    # ---- FINN driver protocol
    def _run_batch(self, integers_nhwc: np.ndarray) -> list[np.ndarray]:
        s, n = self.settings, len(integers_nhwc)
        folded = integers_nhwc.reshape((n, *s.input_shape_folded[1:]))
        packed = pack_finn(folded, s.input_dtype)
        self.input_buffer[:n] = packed
        self.device.flush(self.input_buffer)
        for name in s.output_dma:
            if not self.device.read_register(name, IODMA_START) & IDLE_BIT:
                raise SnapsealError(f"fpga backend: output DMA {name} is not idle (previous run hung?)")
        for name, buffer in zip(s.output_dma, self.output_buffers):
            self._launch(name, buffer, n)
        for name in s.input_dma:
            self._launch(name, self.input_buffer, n)
        deadline = time.monotonic() + self.timeout_s
        for name in s.output_dma:
            while not self.device.read_register(name, IODMA_START) & DONE_BIT:
                if time.monotonic() > deadline:
                    raise SnapsealError(f"fpga backend: {name} did not finish within {self.timeout_s} s")
                time.sleep(POLL_INTERVAL_S)
        outputs = []
        for buffer, dtype, folded_shape, normal in zip(self.output_buffers, s.output_dtypes, s.output_shapes_folded, s.output_shapes_normal):
            self.device.invalidate(buffer)
            ints = unpack_finn(np.asarray(buffer[:n]), dtype, (n, *folded_shape[1:]))
            outputs.append(ints.reshape((n, *normal[1:])))
        return outputs

    def _launch(self, ip_name: str, buffer, batch: int) -> None:
        self.device.write_register(ip_name, IODMA_ADDRESS, int(buffer.device_address))
        self.device.write_register(ip_name, IODMA_BATCH, batch)
        self.device.write_register(ip_name, IODMA_START, 1)

    # ---- Accelerator protocol
    def run_forward_at_mean_integers(self, crops: np.ndarray) -> list[np.ndarray]:
        """The accelerator's raw integer outputs (order of ``settings.output_names``)."""
        crops = _check_crops(crops, f"{self.bundle.path}: fpga backend")
        s = self.settings
        pixels = crops.reshape(len(crops), *s.input_shape_normal[1:])  # uint8: packed by a byte copy
        parts: list[list[np.ndarray]] = [[] for _ in s.output_dtypes]
        for start in range(0, len(pixels), self.batch_size):
            for index, ints in enumerate(self._run_batch(pixels[start : start + self.batch_size])):
                parts[index].append(ints)
        return [np.concatenate(p) if p else np.zeros((0, *shape[1:]), np.int64) for p, shape in zip(parts, s.output_shapes_normal)]

    def run_forward_at_mean_raw(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's float outputs (mu_z, log_sigma_z, decoder_out), as the emulation returns them."""
        integers = self.run_forward_at_mean_integers(crops)
        return {tail["output_name"]: apply_tail(tail, ints) for tail, ints in zip(self.settings.tails, integers)}

    def forward_at_mean(self, crops: np.ndarray) -> tuple[Latent, PixelDist]:
        from snapseal.daemon.scoring.likelihood import pixel_dist_from_output

        out = self.run_forward_at_mean_raw(crops)
        n = out["mu_z"].shape[0]
        latent = Latent(mu=out["mu_z"].reshape(n, -1), log_sigma=out["log_sigma_z"].reshape(n, -1))
        return latent, pixel_dist_from_output(out["decoder_out"], self.bundle.log_sigma_floor)

    def encode(self, crops: np.ndarray) -> Latent:
        return self.forward_at_mean(crops)[0]

    def decode(self, z: np.ndarray) -> PixelDist:
        """Host-sampled latents: not what the bitstream computes, so the emulation runs them."""
        if self._emulator is None:
            from snapseal.daemon.accel.emulate import EmulateAccelerator

            self._emulator = EmulateAccelerator(self.bundle, **self._emulate_options)
        return self._emulator.decode(z)


def _check_crops(crops: np.ndarray, where: str) -> np.ndarray:
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 3 or crops.shape[1:] != (64, 64):
        got = f"{crops.dtype} {crops.shape}" if isinstance(crops, np.ndarray) else type(crops).__name__
        raise SnapsealError(f"{where}: crops must be N x 64 x 64 uint8, got {got}")
    return crops
