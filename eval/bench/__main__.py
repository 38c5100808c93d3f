"""``make bench`` (``python -m snapseal.eval.bench``): one table of speed ratios, one run.

Everything is measured in this one process, one after the other, on this machine:

* the daemon: the daemon's benchmark (``snapseal.eval.bench.pipeline``: detector-only fps
  and end-to-end fps on the demo's 640x480 walk-by, emulation backend), called as is;
* the scorers: crops/s of ``load_scorer(backend=..., scorer=...)`` for every backend that loads
  here (emulate, cpu; fpga needs a board and a bitstream), in batches of the daemon's size;
* the fpga backend's host side: the driver protocol's bit packing/unpacking per crop
  (``snapseal.eval.bench.pipeline.fpga_host_side_ms``), the ARM's share of an FPGA run;
* FINN's estimates: ``crops_per_s`` of ``build/hw/<board>/estimate.json`` (``make estimate``);
* the boards: estimated frames/s and host time per crop from the ARM harness (`make board-estimate`);
* record size and the pipeline's peak traced memory without and with the evidence image;
* peak RSS of this process.

Ratios are against the default scorer on the emulation backend (what the daemon runs without
an FPGA). Nothing is asserted: the numbers are printed and written to docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snapseal.daemon.errors import SnapsealError

REPO_ROOT = Path(__file__).resolve().parents[2]
BOARDS = ("pynq-z2", "ultra96-v2")
BACKENDS = ("emulate", "cpu", "fpga")
SCORERS = ("default", "paper")


@dataclass
class Row:
    what: str
    value: float | None
    unit: str
    basis: str  # how it was obtained
    ratio: float | None = None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def bench_crops(count: int, bootstrap: Path) -> np.ndarray:
    """Real validation crops (the bootstrap set), repeated up to ``count``."""
    from snapseal.quantize.data.bootstrap import load_bootstrap

    crops = load_bootstrap("val", bootstrap).crops
    return np.resize(crops, (count, *crops.shape[1:]))


def daemon_rows(frames: int) -> tuple[list[Row], list[str]]:
    """Run the daemon's benchmark (eval/bench/pipeline.py) and take its figures."""
    from snapseal.eval.bench import pipeline as daemon_bench

    result = daemon_bench.run_benchmark(frames=frames, backend="emulate")
    detector_fps, pipeline_fps = result.detector_fps(), result.pipeline_fps()
    basis = f"snapseal.eval.bench.pipeline, {result.frames} frames of the demo walk-by, emulate backend"
    return [
        Row("detector only (MTCNN), frames/s", detector_fps, "fps", basis, 1.0),
        Row("daemon end to end, frames/s", pipeline_fps, "fps", basis, pipeline_fps / detector_fps),
    ], daemon_bench.report(result).splitlines()


def scorer_rows(crops: np.ndarray, bundle: Path | None, batch: int) -> tuple[list[Row], list[str]]:
    from snapseal.daemon.scoring import load_scorer

    rows, notes = [], []
    for backend in BACKENDS:
        for scorer_name in SCORERS:
            try:
                scorer = load_scorer(bundle, backend=backend, scorer=scorer_name)
            except Exception as exc:  # e.g. fpga without a board/bitstream: say so (once per backend)
                note = f"backend {backend}: not measured here ({str(exc).splitlines()[0]})"
                if note not in notes:
                    notes.append(note)
                continue
            scorer.score_batch(crops[:batch])  # warm-up: sessions, allocations
            started = time.perf_counter()
            for start in range(0, len(crops), batch):
                scorer.score_batch(crops[start:start + batch])
            seconds = time.perf_counter() - started
            rows.append(Row(f"scorer {scorer.name!r} on {backend}, crops/s", len(crops) / seconds, "crops/s",
                            f"load_scorer, {len(crops)} real crops in batches of {batch}"))
    return rows, notes


def fpga_host_rows(crops: np.ndarray) -> tuple[list[Row], list[str]]:
    from snapseal.eval.bench import pipeline as daemon_bench

    measured = daemon_bench.fpga_host_side_ms(crops[:16])
    if measured is None:
        return [], ["fpga host side: snapseal.daemon.accel.fpga not importable"]
    per_crop_ms = (measured["pack_ms"] + measured["unpack_ms"]) / measured["batch"]
    return [Row("fpga backend host side only (pack + unpack), crops/s", 1000.0 / per_crop_ms, "crops/s",
                f"snapseal.eval.bench.pipeline.fpga_host_side_ms, batch {int(measured['batch'])}")], []


def ensure_estimate(board: str, hw_dir: Path, bundle: Path | None) -> tuple[Path, str | None]:
    """build/hw/<board>/estimate.json, (re)made by `make estimate` when it is
    missing or older than the bundle it estimates. Returns (path, problem or None)."""
    import subprocess

    from snapseal.daemon.bundle import MANIFEST, load_bundle

    path = hw_dir / board / "estimate.json"
    manifest = Path(load_bundle(bundle).path) / MANIFEST
    if path.is_file() and path.stat().st_mtime >= manifest.stat().st_mtime:
        return path, None
    command = [sys.executable, "-m", "snapseal.hw.cli", "estimate", "--board", board, "--out", str(hw_dir)]
    if bundle is not None:
        command += ["--bundle", str(bundle)]
    print(f"bench: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not path.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return path, f"`make estimate BOARD={board}` failed: {tail[0]}"
    return path, None


def finn_rows(hw_dir: Path, bundle: Path | None) -> tuple[list[Row], list[str]]:
    rows, notes = [], []
    for board in BOARDS:
        path, problem = ensure_estimate(board, hw_dir, bundle)
        if problem:
            notes.append(f"{board}: {problem}")
            continue
        estimate = json.loads(path.read_text())
        rate = estimate.get("crops_per_s")
        totals, budget = estimate.get("totals", {}), estimate.get("budget", {})
        use = ", ".join(f"{k} {totals[k]:.0f}/{budget[k]:.0f}" for k in ("LUT", "BRAM_18K", "DSP")
                        if k in totals and k in budget)
        rows.append(Row(f"FINN estimate {board} @ {estimate.get('clock_mhz', '?')} MHz, crops/s",
                        float(rate) if rate is not None else None, "crops/s", f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path} ({use})"))
    return rows, notes


def record_rows(frames: int) -> tuple[list[Row], list[str]]:
    """Record size and the pipeline's peak traced memory, without and with the evidence image
    (eval/record_size.py: the daemon's own pipeline on the demo walk-by)."""
    from snapseal.daemon.crop import EvidenceSettings
    from snapseal.eval import record_size

    video = record_size.DEFAULT_VIDEO
    if not video.is_file():
        return [], [f"record size: {video} missing (`make demo` makes it)"]
    rows = []
    for label, evidence in (("model crop only (before evidence images)", None),
                            ("with the evidence image (default)", EvidenceSettings())):
        run = record_size.measure(video, evidence, label)
        basis = f"eval/record_size.measure, {run['frames']} frames of {video.name}, {run['records']} records"
        rows.append(Row(f"record size, {label}", run["mean_kb"], "KB", basis))
        rows.append(Row(f"daemon peak traced memory, {label}", run["peak_mb"], "MB", basis + " (tracemalloc)"))
    return rows, []


def board_rows(path: Path) -> tuple[list[Row], list[str]]:
    """The boards' estimated frames/s and host time per crop (``make board-estimate``: instruction
    counts per stage under qemu-user, converted with the IPC calibration in docs/HARDWARE.md)."""
    if not path.is_file():
        return [], [f"board estimates: {path} missing (`make board-estimate` makes it)"]
    try:
        estimates = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return [], [f"board estimates: {path} unreadable ({error})"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
    rows = []
    for board in BOARDS:
        entry = estimates.get(board)
        if not isinstance(entry, dict):
            continue
        # The board's runtime profile (what deploy/install.sh configures) when it was estimated,
        # else the fastest configuration the harness measured.
        variant = "profile" if "profile" in entry.get("variants", {}) else entry.get("best_variant", "?")
        estimate = entry["variants"]["profile"] if variant == "profile" else entry
        detector = estimate.get("detector", {})
        size = "x".join(str(v) for v in detector.get("frame_size", [])) or "?"
        how = (f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path} ({when}), variant "
               f"{variant}: {detector.get('runtime', '?')} at {size}")
        for key, what, unit in (("fps_1_face", "1 face in view, frames/s", "fps"),
                                ("fps_2_faces", "2 faces in view, frames/s", "fps"),
                                ("host_ms_per_crop", "host side per scored crop", "ms")):
            value = estimate.get(key)
            rows.append(Row(f"{board} (estimated, ARM harness): {what}", float(value) if value is not None else None,
                            unit, how))
    return rows, []


def run(args: argparse.Namespace) -> tuple[list[Row], list[str], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    crops = bench_crops(args.crops, args.bootstrap)
    daemon, daemon_text = daemon_rows(args.frames)
    rows += daemon
    scorers, scorer_notes = scorer_rows(crops, args.bundle, args.batch)
    notes += scorer_notes
    # the reference crop rate: the default scorer on emulation (what a camera without FPGA runs)
    reference = next((r for r in scorers if r.what.endswith("on emulate, crops/s") and "'paper'" not in r.what), None)
    for more in (fpga_host_rows(crops), finn_rows(args.hw, args.bundle)):
        scorers += more[0]
        notes += more[1]
    if reference is not None:
        for row in scorers:
            row.ratio = row.value / reference.value if row.value else None
    rows += scorers
    boards, board_notes = board_rows(args.board_estimate)
    rows += boards
    notes += board_notes
    records, record_notes = record_rows(args.frames)
    rows += records
    notes += record_notes
    rows.append(Row("peak RSS of this benchmark process", peak_rss_mb(), "MB", "getrusage(RUSAGE_SELF).ru_maxrss"))
    return rows, notes, daemon_text


def markdown(rows: list[Row], notes: list[str], daemon_text: list[str], seconds: float) -> str:
    from snapseal.eval.report import fmt, markdown_table

    reference = next((r.what for r in rows if r.ratio == 1.0 and "scorer" in r.what), "the emulated default scorer")
    body = [
        "## Benchmarks\n",
        f"Regenerate with `make bench` (python -m snapseal.eval.bench); measured in one run of "
        f"{seconds:.0f} s on {platform.machine()} ({_cpu_count()} cores shared with other work, no FPGA here), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Frame rates: ratio to detector-only. "
        f"Crop rates: ratio to {reference}.\n",
        markdown_table(["measurement", "value", "unit", "ratio", "how"],
                       [[r.what, fmt(r.value, 2) if r.value is not None else "—", r.unit,
                         fmt(r.ratio, 3) if r.ratio is not None else "—", r.basis] for r in rows]),
    ]
    if notes:
        body.append("\nNotes:\n\n" + "".join(f"- {n}\n" for n in notes))
    body.append("\nThe daemon benchmark's own output in this run (`python -m snapseal.eval.bench.pipeline`):\n\n```\n"
                + "\n".join(daemon_text) + "\n```\n")
    return "\n".join(body)


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150, help="frames for the daemon benchmark")
    parser.add_argument("--crops", type=int, default=256, help="crops per scorer measurement")
    parser.add_argument("--batch", type=int, default=16, help="scorer batch (the daemon's default)")
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--bootstrap", type=Path, default=REPO_ROOT / "build" / "data" / "bootstrap")
    parser.add_argument("--hw", type=Path, default=REPO_ROOT / "build" / "hw")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "docs" / "RESULTS.md")
    parser.add_argument("--board-estimate", type=Path, default=REPO_ROOT / "build" / "bench" / "board-estimate.json",
                        help="the ARM harness's estimates (make board-estimate)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        rows, notes, daemon_text = run(args)
    except SnapsealError as error:
        print(f"snapseal: error: {error}", file=sys.stderr)
        return 2
    text = markdown(rows, notes, daemon_text, time.perf_counter() - started)
    print(text)
    from snapseal.eval.report import replace_section

    replace_section(args.results, "bench", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
