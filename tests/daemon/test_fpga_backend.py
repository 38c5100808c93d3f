"""The fpga backend against a FAKE device at the buffer/register boundary (no pynq, no board).

The fake device behaves like FINN's IODMAs: start bit, done bit, buffer address and batch
registers; when the input DMA starts it unpacks the input buffer, computes the accelerator's
integer outputs and packs them into the output buffers. Runs in both environments (numpy 1/2).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from snapseal.daemon.accel import fpga
from snapseal.daemon.bundle import HardwareSection, load_bundle
from snapseal.daemon.errors import SnapsealError

LATENT = 8


class FakeBuffer(np.ndarray):
    device_address: int


class FakeDevice:
    """Registers + buffers; ``compute(ints N x 64 x 64 x 1) -> [ints per output]``."""

    def __init__(self, settings: dict, compute) -> None:
        self.settings = fpga.DriverSettings(settings, Path("fake"))
        self.compute = compute
        self.buffers: dict[int, np.ndarray] = {}
        self.registers: dict[tuple[str, int], int] = {}
        self.flushed = self.invalidated = 0
        self.runs = 0
        for name in self.settings.output_dma:
            self.registers[(name, fpga.IODMA_START)] = fpga.IDLE_BIT

    def allocate(self, shape, dtype):
        buffer = np.zeros(shape, dtype).view(FakeBuffer)
        buffer.device_address = 0x1000_0000 + 0x10_0000 * len(self.buffers)
        self.buffers[buffer.device_address] = buffer
        return buffer

    def flush(self, buffer) -> None:
        self.flushed += 1

    def invalidate(self, buffer) -> None:
        self.invalidated += 1

    def read_register(self, ip_name: str, offset: int) -> int:
        return self.registers.get((ip_name, offset), 0)

    def write_register(self, ip_name: str, offset: int, value: int) -> None:
        self.registers[(ip_name, offset)] = value
        if offset == fpga.IODMA_START and value == 1 and ip_name in self.settings.input_dma:
            self._run()

    def _run(self) -> None:
        s = self.settings
        batch = self.registers[(s.input_dma[0], fpga.IODMA_BATCH)]
        packed = np.asarray(self.buffers[self.registers[(s.input_dma[0], fpga.IODMA_ADDRESS)]])[:batch]
        ints = fpga.unpack_finn(packed, s.input_dtype, (batch, *s.input_shape_folded[1:]))
        outputs = self.compute(ints.reshape(batch, *s.input_shape_normal[1:]))
        for name, dtype, folded, values in zip(s.output_dma, s.output_dtypes, s.output_shapes_folded, outputs):
            assert self.registers[(name, fpga.IODMA_BATCH)] == batch
            out = self.buffers[self.registers[(name, fpga.IODMA_ADDRESS)]]
            out[:batch] = fpga.pack_finn(np.asarray(values).reshape(batch, *folded[1:]), dtype)
            self.registers[(name, fpga.IODMA_START)] = fpga.DONE_BIT | fpga.IDLE_BIT
        self.runs += 1


def synthetic_settings(scale_mu=2.0**-4, scale_px=2.0**-5) -> dict:
    def tail(name, shape, perm, scale):
        ops = ([{"op": "transpose", "perm": perm}] if perm else []) + [{"op": "mul", "value": [scale], "shape": []}]
        return {"output_name": name, "integer_name": name, "integer_shape": shape, "integer_dtype": "INT8", "ops": ops}

    return {
        "idt": ["UINT8"], "ishape_normal": [[1, 64, 64, 1]], "ishape_folded": [[1, 64, 64, 1, 1]],
        "ishape_packed": [[1, 64, 64, 1, 1]], "idma_names": ["idma0"],
        "odt": ["INT8", "INT8", "INT8"],
        "oshape_normal": [[1, 1, 1, LATENT], [1, 1, 1, LATENT], [1, 64, 64, 2]],
        "oshape_folded": [[1, 1, 1, LATENT, 1], [1, 1, 1, 2, LATENT // 2], [1, 64, 64, 1, 2]],
        "oshape_packed": [[1, 1, 1, LATENT, 1], [1, 1, 1, 2, LATENT // 2], [1, 64, 64, 1, 2]],
        "odma_names": ["odma0", "odma1", "odma2"],
        "output_tails": [tail("mu_z", [1, 1, 1, LATENT], [0, 3, 1, 2], scale_mu),
                         tail("log_sigma_z", [1, 1, 1, LATENT], [0, 3, 1, 2], scale_mu),
                         tail("decoder_out", [1, 64, 64, 2], [0, 3, 1, 2], scale_px)],
        "max_batch": 4,
    }


def synthetic_compute(pixels: np.ndarray) -> list[np.ndarray]:
    """A deterministic stand-in for the network, integers in INT8 range."""
    n = len(pixels)
    flat = pixels.reshape(n, -1).astype(np.int64)
    mu = (flat[:, :LATENT] // 2 - 64).reshape(n, 1, 1, LATENT)
    log_sigma = (-(flat[:, -LATENT:] // 4)).reshape(n, 1, 1, LATENT)
    decoder = np.stack([pixels[..., 0] // 2 - 64, -(pixels[..., 0] // 3)], axis=-1)
    return [mu, log_sigma, decoder]


def fake_bundle(tmp_path: Path, settings: dict | None, with_files: bool = True):
    """A bundle stand-in whose hardware section is the real one (daemon/bundle.HardwareSection),
    so the fpga backend and `make bitstream` cannot drift apart."""
    section = None
    files: dict[str, str] = {}
    if settings is not None:
        section = HardwareSection.for_board("pynq-z2", settings, part="xc7z020clg400-1", clock_mhz=100.0)
        if with_files:
            for relative, content in ((section.bitfile, b"bit"), (section.hwh, b"<hwh/>")):
                (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / relative).write_bytes(content)
                files[relative] = "x"

    def file(relative):
        if relative not in files:
            raise SnapsealError(f"{tmp_path}/manifest.json: bundle has no file {relative!r}")
        return tmp_path / relative

    return SimpleNamespace(path=tmp_path, hardware_section=section, log_sigma_floor=-5.0, file=file, latent_dim=LATENT)


def test_pack_unpack_roundtrip_all_widths():
    rng = np.random.default_rng(1)
    for name in ("UINT8", "INT8", "INT4", "UINT3", "INT11", "INT16", "BINARY"):
        bits, signed = fpga.datatype_bits(name)
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        values = rng.integers(low, high + 1, size=(3, 5, 7))
        packed = fpga.pack_finn(values, name)
        assert packed.dtype == np.uint8 and packed.shape == (3, 5, -(-7 * bits // 8))
        assert np.array_equal(fpga.unpack_finn(packed, name, values.shape), values)


def test_pack_layout_is_little_endian_lsb_first():
    # element 0 in the lowest bits: INT4 [1, -1] -> 0x1 | 0xF << 4 = 0xF1
    assert fpga.pack_finn(np.array([[1, -1]]), "INT4").tolist() == [[0xF1]]
    assert fpga.pack_finn(np.array([[1, 2, 3]]), "UINT8").tolist() == [[1, 2, 3]]


def test_pack_rejects_out_of_range():
    with pytest.raises(SnapsealError, match="outside INT4"):
        fpga.pack_finn(np.array([[8]]), "INT4")


def test_fake_device_matches_direct_computation(tmp_path):
    settings = synthetic_settings()
    device = FakeDevice(settings, synthetic_compute)
    accel = fpga.FpgaAccelerator(fake_bundle(tmp_path, settings), device=device)
    crops = np.random.default_rng(0).integers(0, 256, (10, 64, 64), dtype=np.uint8)
    raw = accel.run_forward_at_mean_raw(crops)
    expected = synthetic_compute(crops[..., None].astype(np.int64))
    assert device.runs == 3  # 10 crops in batches of 4
    for name, ints, scale in zip(("mu_z", "log_sigma_z", "decoder_out"), expected, (2.0**-4, 2.0**-4, 2.0**-5)):
        want = np.transpose(ints, (0, 3, 1, 2)).astype(np.float32) * np.float32(scale)
        assert raw[name].shape == want.shape and np.array_equal(raw[name], want), name
    latent, dist = accel.forward_at_mean(crops)
    assert latent.mu.shape == (10, LATENT) and dist.mu.shape == (10, 64, 64)
    assert np.array_equal(latent.mu, raw["mu_z"].reshape(10, -1))


def test_hung_dma_times_out(tmp_path):
    settings = synthetic_settings()
    device = FakeDevice(settings, synthetic_compute)
    device._run = lambda: None  # never signals done
    accel = fpga.FpgaAccelerator(fake_bundle(tmp_path, settings), device=device, timeout_s=0.05)
    with pytest.raises(SnapsealError, match="did not finish"):
        accel.forward_at_mean(np.zeros((1, 64, 64), np.uint8))


def test_bundle_without_bitstream_says_how_to_build(tmp_path):
    with pytest.raises(SnapsealError, match="make bitstream BOARD="):
        fpga.FpgaAccelerator(fake_bundle(tmp_path, None), device=object())


def test_no_pynq_is_a_clear_error(tmp_path):
    pytest.importorskip("numpy")
    try:
        import pynq  # noqa: F401
        pytest.skip("pynq is installed here")
    except ImportError:
        pass
    settings = synthetic_settings()
    with pytest.raises(SnapsealError, match="needs the `pynq` package"):
        fpga.FpgaAccelerator(fake_bundle(tmp_path, settings))


def test_bad_crops_rejected(tmp_path):
    settings = synthetic_settings()
    accel = fpga.FpgaAccelerator(fake_bundle(tmp_path, settings), device=FakeDevice(settings, synthetic_compute))
    with pytest.raises(SnapsealError, match="N x 64 x 64 uint8"):
        accel.forward_at_mean(np.zeros((2, 32, 32), np.uint8))


GOLDEN = load_bundle().path / "golden"  # the bundle carries its own golden vectors


@pytest.mark.skipif(not (GOLDEN / "driver_settings.json").is_file(), reason="no golden driver settings (make golden)")
def test_fake_device_on_emulation_is_bit_exact_to_emulate_backend():
    """The FPGA path (pack, registers, unpack, host tails) around the emulation graph gives the
    emulation backend's outputs bit for bit, on the golden crops of the default bundle."""
    from snapseal.daemon.accel.emulate import EmulateAccelerator
    from snapseal.daemon.bundle import HardwareSection, load_bundle

    bundle = load_bundle()
    meta = json.loads((GOLDEN / "golden.json").read_text())
    if meta["model_id"] != bundle.model_id:
        pytest.skip("golden vectors are for another model (make golden)")
    settings = json.loads((GOLDEN / "driver_settings.json").read_text())
    emulator = EmulateAccelerator(bundle)

    def compute(pixels):
        raw = emulator.run_forward_at_mean_raw(pixels[..., 0].astype(np.uint8))
        return [_to_ints(tail, raw[tail["output_name"]]) for tail in settings["output_tails"]]

    hw_bundle = SimpleNamespace(path=bundle.path, hardware_section=HardwareSection.for_board("pynq-z2", settings),
                                log_sigma_floor=bundle.log_sigma_floor, file=lambda rel: bundle.path / rel, latent_dim=bundle.latent_dim)
    accel = fpga.FpgaAccelerator(hw_bundle, device=FakeDevice(settings, compute), batch_size=8)
    crops = np.load(GOLDEN / "crops.npy")[:24]
    got, want = accel.run_forward_at_mean_raw(crops), emulator.run_forward_at_mean_raw(crops)
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    from snapseal.daemon.cli.selftest import compare_output

    for tail, ints in zip(settings["output_tails"], accel.run_forward_at_mean_integers(crops)):
        name = tail["output_name"]
        compared, differing_ints, differing_crops = compare_output(meta, np.load(GOLDEN / meta["expected"][name]), name, ints)
        assert compared > 0 and differing_ints == 0 and differing_crops == 0, name


def _to_ints(tail, values):
    x = np.asarray(values, np.float64)
    for op in reversed(tail["ops"]):
        if op["op"] == "mul":
            x = x / np.asarray(op["value"], np.float64).reshape(op["shape"])
        elif op["op"] == "transpose":
            x = np.transpose(x, np.argsort(op["perm"]))
    return np.round(x).astype(np.int64)


def test_fpga_backend_scores_on_the_choosers_worker_thread_as_inline(tmp_path):
    """The daemon scores on the chooser's worker thread: the fpga path (pack, registers, poll,
    unpack) gives there the scores and choices it gives in the caller's thread."""
    from snapseal.daemon.choose import CropChooser
    from snapseal.daemon.scoring.complexity import ComplexityScorer
    from snapseal.daemon.track import TrackInfo
    from snapseal.daemon.types import Box, Detection, FaceCrop

    settings = synthetic_settings()
    rng = np.random.default_rng(4)
    crops = rng.integers(0, 256, (40, 64, 64), dtype=np.uint8)
    detection = Detection(Box(0, 0, 10, 10), np.zeros((5, 2), np.float32), 0.99)
    outcomes = []
    for background in (False, True):
        accel = fpga.FpgaAccelerator(fake_bundle(tmp_path, settings), device=FakeDevice(settings, synthetic_compute))
        scored = []
        with CropChooser(ComplexityScorer(accel, "synthetic"), batch_size=6, background=background,
                         on_scored=lambda track_id, s: scored.append((track_id, s.score))) as chooser:  # noqa: B023
            for index, pixels in enumerate(crops):
                chooser.add(index % 2, FaceCrop(pixels, detection, index, float(index)))
            choices = [chooser.end_track(TrackInfo(track_id, 0, 39, 20, True)) for track_id in (0, 1)]
        outcomes.append(([(c.best.score, c.best.crop.frame_index) for c in choices], scored))
    assert outcomes[0] == outcomes[1] and len(outcomes[0][1]) == 40
