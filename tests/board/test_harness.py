"""The ARM harness's conversion from instruction counts to frames/s (eval/board/harness.py),
and the instruction-counting plugin when a sysroot has been built (make board-setup)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"board_{name}", REPO / "eval" / "board" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


harness = load("harness")


def counts(detect=100e6, nets=(300e6, 80e6, 200e6), crop=5e6, score=5e6, seal=2e6, frames=60, crops=45,
           runtime="opencv") -> dict:
    instructions = {"detect": detect * frames, "pnet": nets[0] * frames, "rnet": nets[1] * frames,
                    "onet": nets[2] * frames, "track": 1e6 * frames, "crop": crop * crops, "score": score * crops,
                    "seal": seal * crops, "accel": 9e9}
    return {"instructions": instructions, "settings": [f'detector.runtime="{runtime}"'], "size": None,
            "stats": {"frames": frames, "detections": crops, "crops": crops, "scored": crops, "frame_size": [640, 480]}}


def test_time_is_instructions_over_ipc_times_clock():
    board = harness.BOARDS["pynq-z2"]
    estimate = harness.to_estimate(board, counts(runtime="opencv"))
    per_frame = (100e6 + 300e6 + 80e6 + 200e6) / (board.ipc_scalar * board.clock_mhz * 1e6) * 1e3
    assert estimate["detector"]["ms_per_frame"] == pytest.approx(per_frame, rel=1e-3)
    assert estimate["host_ms_per_crop"] == pytest.approx(10e6 / (board.ipc_scalar * board.clock_mhz * 1e3), rel=1e-2)
    faster = harness.to_estimate(replace(board, clock_mhz=2 * board.clock_mhz), counts(runtime="opencv"))
    assert faster["fps_1_face"] == pytest.approx(2 * estimate["fps_1_face"], rel=1e-2)


def test_neon_runtimes_use_the_neon_ipc_and_cv2_on_armhf_does_not():
    board = harness.BOARDS["pynq-z2"]
    assert not harness.to_estimate(board, counts(runtime="opencv"))["ipc"]["nets_use_neon"]
    assert harness.to_estimate(board, counts(runtime="ncnn"))["ipc"]["nets_use_neon"]
    assert harness.to_estimate(harness.BOARDS["ultra96-v2"], counts(runtime="opencv"))["ipc"]["nets_use_neon"]


def test_more_faces_never_more_frames_and_the_accelerator_is_left_out():
    board = harness.BOARDS["ultra96-v2"]
    estimate = harness.to_estimate(board, counts(runtime="ncnn"))
    assert estimate["fps_2_faces"] <= estimate["fps_1_face"]
    assert estimate["fps_1_face_one_core"] <= estimate["fps_1_face"]
    heavier = counts(runtime="ncnn")
    heavier["instructions"]["accel"] *= 100
    assert harness.to_estimate(board, heavier)["fps_1_face"] == estimate["fps_1_face"]


def test_estimate_file_keeps_every_variant_and_reports_the_fastest(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "ESTIMATE_FILE", tmp_path / "board-estimate.json")
    board = harness.BOARDS["pynq-z2"]
    harness.write_estimate(board, "stock", harness.to_estimate(board, counts(runtime="opencv")))
    harness.write_estimate(board, "ncnn", harness.to_estimate(board, counts(runtime="ncnn", nets=(50e6, 10e6, 20e6))))
    data = json.loads((tmp_path / "board-estimate.json").read_text())
    entry = data["pynq-z2"]
    assert set(entry["variants"]) == {"stock", "ncnn"} and entry["best_variant"] == "ncnn"
    assert {"fps_1_face", "fps_2_faces", "host_ms_per_crop", "detector"} <= set(entry)
    assert entry["fps_2_faces"] == entry["variants"]["ncnn"]["fps_2_faces"]


def test_a_setting_without_a_value_is_one_clear_error(tmp_path):
    with pytest.raises(harness.HarnessError, match="section.key=value"):
        harness.guest_config(harness.BOARDS["pynq-z2"], ["detector.runtime"], tmp_path)


@pytest.mark.parametrize("name", sorted(harness.BOARDS))
def test_plugin_counts_the_marked_buckets(name, tmp_path):
    """Needs the board's sysroot (make board-setup BOARD=...) and qemu-user; skipped without."""
    board = harness.BOARDS[name]
    sysroot = harness.paths(board)["sysroot"]
    if not (sysroot / ".snapseal-sysroot").exists() or shutil.which(board.qemu) is None or shutil.which("gcc") is None:
        pytest.skip(f"no {board.arch} sysroot or qemu-user/gcc: make board-setup BOARD={name}")
    plugin = tmp_path / "insn_buckets.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(plugin), str(REPO / "eval/board/insn_buckets.c")],
                   check=True)
    out = tmp_path / "counts.json"
    program = ("import sys; sys.path.insert(0, sys.argv[1]); from marks import stage\n"
               "with stage('pnet'): sum(range(10000))\nwith stage('rnet'): sum(range(400000))\n")
    subprocess.run([board.qemu, "-cpu", board.cpu, "-L", str(sysroot), "-plugin", f"{plugin},out={out},{board.lseek}",
                    str(sysroot / "usr/bin/python3.11"), "-c", program, str(REPO / "eval/board")], check=True, timeout=300)
    result = json.loads(out.read_text())
    buckets = {int(k): v for k, v in result["buckets"].items()}
    assert result["marks"] == 4 and sum(buckets.values()) == result["total"]
    assert buckets[4] > 10 * buckets[3] > 0  # rnet ran 40x the loop of pnet
