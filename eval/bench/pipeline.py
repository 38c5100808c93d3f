"""Benchmark: the whole pipeline beside the detector alone, on 640x480 video, in one run.

    python -m snapseal.eval.bench.pipeline [--frames 150] [--rounds 3] [--backend emulate] [--video FILE]
                                    [--scoring worker|inline|both]

Prints detector-only fps (frames decoded beforehand), end-to-end fps (decode, detect, track,
crop, score, choose, seal, store into a temporary directory), the pipeline's overhead over
detection alone (target <= 25 %), milliseconds per frame for every stage, and peak RSS.

Each round is one pipeline pass between two detector-only passes (D P D P D ...: neighbouring
rounds share a detector pass); a round's ratio is its pipeline time over the mean of its two
detector passes, so a change in machine load biases neither side, and the median round is
reported (all rounds' ratios are printed too). The scorer is loaded once and warmed up before
the runs (as the daemon does before READY), like the detector.

Crops are scored on the chooser's worker thread as in the daemon (``--scoring inline``: in the
frame loop; ``both``: alternate round by round, an A/B on the same machine load). The "score"
stage is the time the frame loop spent waiting for scores; the scorer's own busy time, which
on the worker overlaps the other stages, is printed beside it. With the ``fpga`` accelerator
module present, the host-side packing/unpacking of its driver protocol is timed on the run's
crops.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snapseal.daemon.errors import SnapsealError


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def detector_only(detector, frames: list[np.ndarray]) -> float:
    started = time.perf_counter()
    for image in frames:
        detector.detect(image)
    return time.perf_counter() - started


def fpga_host_side_ms(crops: np.ndarray, repeats: int = 20) -> dict[str, float] | None:
    """Per-batch time of the fpga driver's host work (bit packing in, unpacking out)."""
    try:
        from snapseal.daemon.accel.fpga import pack_finn, unpack_finn
    except ImportError:
        return None
    folded = crops.reshape(len(crops), 64, 64, 1).astype(np.int64)  # NHWC, one input channel per beat
    started = time.perf_counter()
    for _ in range(repeats):
        packed = pack_finn(folded, "UINT8")
    pack_ms = 1000.0 * (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        unpack_finn(packed, "UINT8", folded.shape)
    unpack_ms = 1000.0 * (time.perf_counter() - started) / repeats
    return {"batch": float(len(crops)), "pack_ms": pack_ms, "unpack_ms": unpack_ms}


@dataclass(frozen=True)
class Round:
    """One pipeline pass and the detector-only passes just before and after it."""

    scoring: str  # "worker" or "inline"
    summary: Any  # pipeline.RunSummary
    detect_before_s: float
    detect_after_s: float
    stats: Any  # choose.ChooserStats

    @property
    def detect_s(self) -> float:
        return (self.detect_before_s + self.detect_after_s) / 2.0

    @property
    def ratio(self) -> float:
        return self.summary.seconds / self.detect_s


@dataclass(frozen=True)
class PipelineBench:
    """What one benchmark run measured (``run_benchmark``); ``report`` prints it."""

    frames: int
    width: int
    height: int
    video: str
    backend: str
    scorer: str
    rounds: list[Round]
    fpga_host: dict[str, float] | None  # fpga_host_side_ms on the run's own crops
    rss_start_mb: float
    rss_peak_mb: float

    def median(self, mode: str) -> Round:
        """The median round (upper middle for an even count) of one scoring mode."""
        mine = sorted((r for r in self.rounds if r.scoring == mode), key=lambda r: r.ratio)
        return mine[len(mine) // 2]

    @property
    def modes(self) -> list[str]:
        return list(dict.fromkeys(r.scoring for r in self.rounds))

    def detector_fps(self, mode: str = "worker") -> float:
        return self.frames / self.median(mode).detect_s

    def pipeline_fps(self, mode: str = "worker") -> float:
        return self.median(mode).summary.fps


def run_benchmark(frames: int = 150, rounds: int = 3, backend: str = "emulate", video: Path | None = None,
                  scoring: str = "worker") -> PipelineBench:
    """Detector-only passes and pipeline passes in turn on the same frames (see the module doc)."""
    import cv2

    from snapseal.daemon.capture import FileSource, parse_source
    from snapseal.daemon.config import load_config
    from snapseal.daemon.detect import make_detector
    from snapseal.daemon.keys import InvestigatorKeyPair, save_investigator_keys
    from snapseal.daemon.logs import configure_logging
    from snapseal.daemon.scoring import load_scorer
    from snapseal.daemon.service import build_pipeline
    from snapseal.eval.scenes.assets import REPO_ROOT

    configure_logging("text", level=logging.WARNING)

    detector = make_detector(min_face_px=40, confidence=0.9)
    if video is None:
        from snapseal.eval.scenes.demo import ensure_walkby

        video = ensure_walkby(REPO_ROOT / "build" / "demo" / "input", detector)
    rss_start = peak_rss_mb()

    # Frames decoded up front for the detector-only passes.
    capture = cv2.VideoCapture(str(video))
    decoded = []
    while len(decoded) < frames:
        ok, image = capture.read()
        if not ok:
            break
        decoded.append(image)
    capture.release()
    if not decoded:
        raise SnapsealError(f"benchmark video {video}: no frames could be read")
    n = len(decoded)
    height, width = decoded[0].shape[:2]
    detector.detect(decoded[0])  # warm-up (sessions, allocations)
    scorer = load_scorer(backend=backend)  # build_pipeline warms it up, as the daemon does before READY

    modes = ["worker", "inline"] if scoring == "both" else [scoring]
    crops: list[np.ndarray] = []
    done: list[Round] = []
    detect_before = detector_only(detector, decoded)
    with tempfile.TemporaryDirectory(prefix="snapseal-bench-") as temp:
        pub, _ = save_investigator_keys(InvestigatorKeyPair.generate(), Path(temp) / "keys")
        for index in range(max(1, rounds)):
            mode = modes[index % len(modes)]
            config = load_config(None, {"store.dir": str(Path(temp) / f"store-{index}"), "keys.recipient": str(pub),
                                        "quality.backend": backend})
            limited = _Limited(FileSource(parse_source(str(video))), n)
            built = build_pipeline(config, ephemeral_device_key=True, source=limited, detector=detector, scorer=scorer,
                                   on_scored=(lambda _track, scored: crops.append(scored.crop.pixels)) if index == 0 else None,
                                   background_scoring=mode == "worker")
            summary = built.pipeline.run()
            detect_after = detector_only(detector, decoded)
            done.append(Round(mode, summary, detect_before, detect_after, built.pipeline.chooser.stats))
            detect_before = detect_after
    fpga = fpga_host_side_ms(np.stack(crops[:16])) if crops else None
    return PipelineBench(n, width, height, Path(video).name, backend, scorer.name, done, fpga, rss_start, peak_rss_mb())


def report(result: PipelineBench) -> str:
    """The benchmark as text, one table per scoring mode."""
    n, first = result.frames, result.rounds[0].summary
    lines = [f"snapseal daemon benchmark: {n} frames {result.width}x{result.height} of {result.video}, backend "
             f"{result.backend}, scorer {result.scorer}, {first.detections} detections, {first.records_written} records; "
             f"{len(result.rounds)} round(s), each a pipeline pass between two detector-only passes",
             f"{'round':>5} {'scoring':>8} {'detector fps':>13} {'pipeline fps':>13} {'pipeline/detector':>18}"]
    for index, r in enumerate(result.rounds, 1):
        lines.append(f"{index:>5} {r.scoring:>8} {n / r.detect_s:13.2f} {r.summary.fps:13.2f} {r.ratio:18.3f}"
                     f"   (detector before {n / r.detect_before_s:.2f} fps, after {n / r.detect_after_s:.2f} fps)")
    for mode in result.modes:
        mine = sorted((r for r in result.rounds if r.scoring == mode), key=lambda r: r.ratio)
        median = result.median(mode)
        summary, stats = median.summary, median.stats
        lines += [f"\nscoring {mode} (the daemon's {'way' if mode == 'worker' else 'old way'}), median of {len(mine)} round(s):",
                  f"{'':24}{'fps':>8}{'ms/frame':>10}",
                  f"{'detector only':24}{n / median.detect_s:8.2f}{1000 * median.detect_s / n:10.1f}",
                  f"{'pipeline end to end':24}{summary.fps:8.2f}{1000 * summary.seconds / n:10.1f}",
                  f"pipeline / detector time: {median.ratio:.3f}  -> overhead {100 * (median.ratio - 1):+.1f} % (target <= +25 %)"
                  f"; all rounds {', '.join(f'{100 * (r.ratio - 1):+.1f} %' for r in mine)}",
                  "per stage, ms/frame:   " + "  ".join(f"{stage} {ms:.2f}" for stage, ms in summary.stage_ms_per_frame.items())]
        other = 1000 * summary.seconds / n - sum(summary.stage_ms_per_frame.values())
        lines += [f"                        (loop and bookkeeping {other:.2f})",
                  f"scoring: scorer busy {summary.score_busy_ms_per_frame:.2f} ms/frame "
                  f"({1000 * stats.score_seconds / max(stats.crops_scored, 1):.2f} ms/crop, {stats.batches} batches"
                  f"{', on the worker thread, overlapping the stages above' if mode == 'worker' else ', in the frame loop'}); "
                  f"frame loop waited for scores {summary.stage_ms_per_frame['score']:.2f} ms/frame (the score stage)"]
    fpga = result.fpga_host
    if fpga is not None:
        per_crop = (fpga["pack_ms"] + fpga["unpack_ms"]) / fpga["batch"]
        lines.append(f"\nfpga host side (daemon/accel/fpga.py pack/unpack, batch {int(fpga['batch'])}): pack {fpga['pack_ms']:.3f} ms, "
                     f"unpack {fpga['unpack_ms']:.3f} ms per batch = {per_crop:.3f} ms per crop; "
                     f"{first.detections / n:.2f} crops/frame -> {per_crop * first.detections / n:.3f} ms/frame")
    lines.append(f"peak RSS: {result.rss_peak_mb:.0f} MB (at start {result.rss_start_mb:.0f} MB)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.bench.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3, help="pipeline passes, each between two detector-only passes")
    parser.add_argument("--backend", default="emulate", choices=("emulate", "cpu", "fpga"))
    parser.add_argument("--video", type=Path, help="a 640x480 video (default: the demo's walk-by, made if missing)")
    parser.add_argument("--scoring", default="worker", choices=("worker", "inline", "both"),
                        help="score on the chooser's worker thread (the daemon's way), in the frame loop, "
                             "or alternate the two round by round")
    args = parser.parse_args(argv)
    try:
        result = run_benchmark(args.frames, args.rounds, args.backend, args.video, args.scoring)
    except SnapsealError as error:
        print(f"snapseal: error: {error}", file=sys.stderr)
        return 2
    print(report(result))
    return 0


class _Limited:
    """A source that ends after ``limit`` frames (the benchmark's length)."""

    def __init__(self, source, limit: int) -> None:
        self._source, self._limit, self._count = source, limit, 0
        self.spec, self.stats = source.spec, source.stats

    def read(self, timeout: float = 0.5):
        if self._count >= self._limit:
            return None
        self._count += 1
        return self._source.read(timeout)

    @property
    def ended(self) -> bool:
        return self._count >= self._limit or self._source.ended

    def close(self) -> None:
        self._source.close()


if __name__ == "__main__":
    raise SystemExit(main())
