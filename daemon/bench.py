"""Benchmark: the whole pipeline beside the detector alone, on 640x480 video, in one run.

    python -m snapseal.daemon.bench [--frames 150] [--backend emulate] [--video FILE]

Prints detector-only fps (frames decoded beforehand), end-to-end fps (decode, detect, track,
crop, score, choose, seal, store into a temporary directory), the pipeline's overhead over
detection alone (target <= 25 %), milliseconds per frame for every stage, and peak RSS. The
detector-only pass runs before and after the pipeline and the two are averaged, so a change
in machine load during the run biases neither side. With the ``fpga`` accelerator module
present, the host-side packing/unpacking of its driver protocol is timed on the run's crops.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.daemon.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--backend", default="emulate", choices=("emulate", "cpu", "fpga"))
    parser.add_argument("--video", type=Path, help="a 640x480 video (default: the demo's walk-by, made if missing)")
    args = parser.parse_args(argv)

    import cv2

    from snapseal.daemon.capture import FileSource, parse_source
    from snapseal.daemon.config import load_config
    from snapseal.daemon.demo.assets import REPO_ROOT
    from snapseal.daemon.demo.walkby import plan_walkby
    from snapseal.daemon.detect import make_detector
    from snapseal.daemon.keys import InvestigatorKeyPair, save_investigator_keys
    from snapseal.daemon.service import build_pipeline, configure_logging

    configure_logging("text", level=logging.WARNING)

    detector = make_detector(min_face_px=40, confidence=0.9)
    video = args.video
    if video is None:
        from snapseal.daemon.demo.__main__ import ensure_walkby

        video = ensure_walkby(REPO_ROOT / "build" / "demo" / "input", detector)
    rss_start = peak_rss_mb()

    # Frames decoded up front for the detector-only pass.
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < args.frames:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    height, width = frames[0].shape[:2]
    detector.detect(frames[0])  # warm-up (sessions, allocations)
    detect_before = detector_only(detector, frames)

    crops: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="snapseal-bench-") as temp:
        pub, _ = save_investigator_keys(InvestigatorKeyPair.generate(), Path(temp) / "keys")
        config = load_config(None, {"store.dir": str(Path(temp) / "store"), "keys.recipient": str(pub),
                                    "quality.backend": args.backend})
        source = FileSource(parse_source(str(video)))
        limited = _Limited(source, len(frames))
        built = build_pipeline(config, ephemeral_device_key=True, source=limited, detector=detector,
                               on_scored=lambda _track, scored: crops.append(scored.crop.pixels))
        summary = built.pipeline.run()
    detect_after = detector_only(detector, frames)

    n = len(frames)
    detect_s = (detect_before + detect_after) / 2.0
    detect_fps = n / detect_s
    overhead = summary.seconds / detect_s - 1.0
    print(f"snapseal daemon benchmark: {n} frames {width}x{height} of {video.name}, backend {args.backend}, "
          f"scorer {built.pipeline.chooser.scorer.name}, {summary.detections} detections, "
          f"{summary.records_written} records")
    print(f"{'':24}{'fps':>8}{'ms/frame':>10}")
    print(f"{'detector only':24}{detect_fps:8.2f}{1000 * detect_s / n:10.1f}   (before {n / detect_before:.2f} fps, after {n / detect_after:.2f} fps)")
    print(f"{'pipeline end to end':24}{summary.fps:8.2f}{1000 * summary.seconds / n:10.1f}")
    print(f"pipeline / detector time: {summary.seconds / detect_s:.3f}  -> overhead {100 * overhead:+.1f} % "
          f"(target <= +25 %)")
    print("per stage, ms/frame:   " + "  ".join(f"{stage} {ms:.2f}" for stage, ms in summary.stage_ms_per_frame.items()))
    other = 1000 * summary.seconds / n - sum(summary.stage_ms_per_frame.values())
    print(f"                        (loop and bookkeeping {other:.2f})")
    if crops:
        batch = np.stack(crops[:16])
        fpga = fpga_host_side_ms(batch)
        if fpga is not None:
            per_crop = (fpga["pack_ms"] + fpga["unpack_ms"]) / fpga["batch"]
            print(f"fpga host side (daemon/accel/fpga.py pack/unpack, batch {int(fpga['batch'])}): pack {fpga['pack_ms']:.3f} ms, "
                  f"unpack {fpga['unpack_ms']:.3f} ms per batch = {per_crop:.3f} ms per crop; "
                  f"{summary.detections / n:.2f} crops/frame -> {per_crop * summary.detections / n:.3f} ms/frame")
    print(f"peak RSS: {peak_rss_mb():.0f} MB (at start {rss_start:.0f} MB)")
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
