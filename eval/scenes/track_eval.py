"""Measure the trackers against walk-by ground truth: which one is the daemon's default.

    python -m snapseal.eval.scenes.track_eval                 # simulated detections, many seeds
    python -m snapseal.eval.scenes.track_eval --video         # + the real detector on rendered videos

Two kinds of input, both from ``walkby`` plans whose every face box is known:

- **simulated detections**: the true boxes with jitter, misses (more while turned away, in
  shade and when partly hidden), occasional false positives, and optionally only every n-th
  frame (a live camera dropping frames behind a slow pipeline). Fast: many seeds.
- **the real detector** (MTCNN) on the demo's walk-by videos (the plan ``make demo`` and the
  frame-selection evaluation use: 5 walkers, seeds 0, 1, 2, ...), written as MJPG and read back
  like the demo's input, detections matched to the truth by IoU.

Per tracker: people who yield exactly one record (a track of at least ``min_length`` frames
whose detections are mostly theirs), people split over several records (fragmented), people
with none (missed), identity switches (a person's consecutive detections landing in
different tracks), tracks with at least ``min_length`` detections of another person (merged),
tracks with any detection of another person (mixed: any of those crops may be the one kept,
and sealed as this person), and tracks of no one (false).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from snapseal.daemon.capture import read_video_frames
from snapseal.eval.scenes.walkby import TruthBox, WalkbyPlan, plan_walkby
from snapseal.daemon.track import DistanceTracker, IouTracker, Tracker, iou_matrix
from snapseal.daemon.types import Box, Detection

NO_LANDMARKS = np.zeros((5, 2), np.float32)


@dataclass(frozen=True)
class LabelledDetection:
    detection: Detection
    person_id: int | None  # None: a false positive


@dataclass
class TrackMetrics:
    people: int = 0  # people with enough detections to be expected to yield a record
    exactly_one: int = 0
    fragmented: int = 0
    missed: int = 0
    id_switches: int = 0
    merged_tracks: int = 0
    mixed_tracks: int = 0
    false_tracks: int = 0
    tracks: int = 0

    def add(self, other: TrackMetrics) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def simulate_detections(plan: WalkbyPlan, seed: int, jitter: float = 0.03, miss_rate: float = 0.05,
                        false_rate: float = 0.01, frame_step: int = 1) -> dict[int, list[LabelledDetection]]:
    """Detector output as a noisy copy of the truth (see the module docstring)."""
    rng = np.random.default_rng(seed)
    by_frame = plan.truth_by_frame()
    out: dict[int, list[LabelledDetection]] = {}
    for frame in range(0, plan.n_frames, frame_step):
        found = []
        for truth in by_frame.get(frame, []):
            miss = miss_rate if truth.visible else 0.85
            if truth.phase == "shade":
                miss = max(miss, 0.15)
            if rng.random() < miss:
                continue
            box = truth.box
            size = max(box.width, box.height)
            noise = rng.normal(0.0, jitter * size, size=4)
            found.append(LabelledDetection(Detection(Box(box.x1 + noise[0], box.y1 + noise[1], box.x2 + noise[2], box.y2 + noise[3]),
                                                     NO_LANDMARKS, 0.99), truth.person_id))
        if rng.random() < false_rate:
            size = rng.uniform(0.08, 0.15) * plan.height
            x, y = rng.uniform(0, plan.width - size), rng.uniform(0, plan.height - size)
            found.append(LabelledDetection(Detection(Box(x, y, x + size, y + size), NO_LANDMARKS, 0.95), None))
        rng.shuffle(found)
        out[frame] = found
    return out


def label_detections(truth: Sequence[TruthBox], detections: Sequence[Detection], min_iou: float = 0.3) -> list[LabelledDetection]:
    """Match a frame's detections to its true faces by IoU (greedy); unmatched -> false positive."""
    truth_boxes = np.array([[t.box.x1, t.box.y1, t.box.x2, t.box.y2] for t in truth]).reshape(-1, 4)
    det_boxes = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in detections]).reshape(-1, 4)
    ious = iou_matrix(det_boxes, truth_boxes)
    labels: list[int | None] = [None] * len(detections)
    used: set[int] = set()
    for flat in np.argsort(-ious, axis=None):
        d, t = divmod(int(flat), max(len(truth), 1))
        if len(truth) == 0 or ious[d, t] < min_iou:
            break
        if labels[d] is None and t not in used:
            labels[d] = truth[t].person_id
            used.add(t)
    return [LabelledDetection(det, label) for det, label in zip(detections, labels)]


def evaluate(tracker: Tracker, detections: dict[int, list[LabelledDetection]], min_length: int,
             frame_size: tuple[int, int] | None = (640, 480)) -> TrackMetrics:
    """Run ``tracker`` over labelled detections and score its tracks against the labels."""
    members: dict[int, list[int | None]] = defaultdict(list)  # track id -> person of each detection
    sequence: dict[int, list[int]] = defaultdict(list)  # person -> track id of each detection, in time order
    long_tracks: set[int] = set()
    for frame in sorted(detections):
        labelled = detections[frame]
        step = tracker.update([ld.detection for ld in labelled], frame, frame_size)
        for ld, track_id in zip(labelled, step.track_ids):
            members[track_id].append(ld.person_id)
            if ld.person_id is not None:
                sequence[ld.person_id].append(track_id)
        long_tracks.update(t.track_id for t in step.ended if t.long_enough)
    long_tracks.update(t.track_id for t in tracker.finish() if t.long_enough)

    metrics = TrackMetrics(tracks=len(long_tracks))
    records: Counter[int] = Counter()
    for track_id in long_tracks:
        counts = Counter(members[track_id])
        owner, owned = counts.most_common(1)[0]
        if owner is None:
            metrics.false_tracks += 1
            continue
        records[owner] += 1
        others = sum(n for person, n in counts.items() if person not in (owner, None))
        if others >= min_length:
            metrics.merged_tracks += 1
        if others:
            metrics.mixed_tracks += 1
    for person, track_ids in sequence.items():
        if len(track_ids) < min_length:
            continue  # never seen long enough: no tracker could be asked for a record
        metrics.people += 1
        metrics.id_switches += sum(1 for a, b in zip(track_ids, track_ids[1:]) if a != b)
        if records[person] == 1:
            metrics.exactly_one += 1
        elif records[person] > 1:
            metrics.fragmented += 1
        else:
            metrics.missed += 1
    return metrics


def _iou_without_reappearance(max_age: int, min_length: int) -> IouTracker:
    """The IoU tracker as it was before lost tracks could come back (ends at max_age)."""
    return IouTracker(max_age, min_length, max_lost_frames=max_age)


TRACKERS = {"distance": DistanceTracker, "iou": IouTracker, "iou-noreid": _iou_without_reappearance}

SCENARIOS = {
    # name: (plan kwargs, simulate kwargs)
    "walk-by 25 fps": ({"n_people": 4}, {}),
    "every 3rd frame (dropped)": ({"n_people": 4}, {"frame_step": 3}),
    "crowded (6 people, 70% overlap)": ({"n_people": 6, "overlap": 0.7}, {}),
    "noisy detector": ({"n_people": 4}, {"jitter": 0.07, "miss_rate": 0.2, "false_rate": 0.05}),
}


def simulated_table(seeds: int, max_age: int, min_length: int, width: int = 640, height: int = 480) -> list[tuple[str, str, TrackMetrics]]:
    rows = []
    for scenario, (plan_kwargs, sim_kwargs) in SCENARIOS.items():
        for name, tracker_cls in TRACKERS.items():
            total = TrackMetrics()
            for seed in range(seeds):
                plan = plan_walkby(width, height, seed=seed, **plan_kwargs)
                detections = simulate_detections(plan, seed=seed, **sim_kwargs)
                step = sim_kwargs.get("frame_step", 1)
                # Ages and lengths are in delivered frames: scale the frame-index age with the step.
                total.add(evaluate(tracker_cls(max_age * step, min_length), detections, min_length))
            rows.append((scenario, name, total))
    return rows


def video_table(seeds: Iterable[int], max_age: int, min_length: int, width: int, height: int) -> list[tuple[str, str, TrackMetrics]]:
    """The real detector on the demo's walk-bys (needs build/assets face photos)."""
    import tempfile
    from pathlib import Path

    from snapseal.daemon.config import DetectorConfig
    from snapseal.eval.scenes.demo import WALKBY_PEOPLE
    from snapseal.eval.scenes.assets import load_face_patches
    from snapseal.eval.scenes.walkby import write_video
    from snapseal.daemon.detect import make_detector

    config = DetectorConfig()  # the daemon's default detector settings, as the demo runs
    detector = make_detector(min_face_px=config.min_face_px, confidence=config.confidence)
    patches = load_face_patches(detector)
    totals = {name: TrackMetrics() for name in TRACKERS}
    for seed in seeds:
        plan = plan_walkby(width, height, n_people=WALKBY_PEOPLE, frames_per_person=100, n_patches=len(patches), seed=seed)
        by_frame = plan.truth_by_frame()
        with tempfile.TemporaryDirectory() as tmp:
            video = write_video(plan, patches, Path(tmp) / f"walkby_{width}x{height}_seed{seed}.avi")
            detections = {index: label_detections(by_frame.get(index, []), detector.detect(image))
                          for index, image in enumerate(read_video_frames(video))}
        for name, tracker_cls in TRACKERS.items():
            totals[name].add(evaluate(tracker_cls(max_age, min_length), detections, min_length))
    return [("real detector on rendered video", name, metrics) for name, metrics in totals.items()]


def scenes_table(scenes: Sequence[str], seeds: Iterable[int], max_age: int, min_length: int) -> list[tuple[str, str, TrackMetrics]]:
    """The real detector on the harder scenes (eval/scenes/hard.py), every tracker."""
    from snapseal.daemon.config import DetectorConfig
    from snapseal.daemon.detect import make_detector
    from snapseal.eval.scenes.assets import load_face_patches
    from snapseal.eval.scenes.hard import plan_scene
    from snapseal.eval.scenes.walkby import render_frames

    config = DetectorConfig()
    detector = make_detector(min_face_px=config.min_face_px, confidence=config.confidence)
    patches = load_face_patches(detector)
    rows = []
    seeds = list(seeds)
    for scene in scenes:
        totals = {name: TrackMetrics() for name in TRACKERS}
        for seed in seeds:
            plan = plan_scene(scene, len(patches), seed)
            by_frame = plan.truth_by_frame()
            detections = {index: label_detections(by_frame.get(index, []), detector.detect(image))
                          for index, image in enumerate(render_frames(plan, patches))}
            for name, tracker_cls in TRACKERS.items():
                totals[name].add(evaluate(tracker_cls(max_age, min_length), detections, min_length))
        rows += [(f"scene {scene}", name, metrics) for name, metrics in totals.items()]
    return rows


def format_table(rows: Sequence[tuple[str, str, TrackMetrics]]) -> str:
    header = f"{'scenario':<34} {'tracker':<9} {'people':>6} {'exactly 1':>9} {'fragm.':>6} {'missed':>6} {'ID sw.':>6} {'merged':>6} {'mixed':>5} {'false':>5}"
    lines = [header, "-" * len(header)]
    for scenario, name, m in rows:
        lines.append(f"{scenario:<34} {name:<9} {m.people:>6} {m.exactly_one:>9} {m.fragmented:>6} {m.missed:>6} "
                     f"{m.id_switches:>6} {m.merged_tracks:>6} {m.mixed_tracks:>5} {m.false_tracks:>5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.scenes.track_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--max-age", type=int, default=15)
    parser.add_argument("--min-length", type=int, default=5)
    parser.add_argument("--video", action="store_true", help="also run the real detector on rendered videos")
    parser.add_argument("--video-seeds", type=int, default=3, help="walk-by seeds 0..n-1 (the evaluation uses 0, 1, 2)")
    parser.add_argument("--video-size", default="640x480")
    parser.add_argument("--scenes", default="", help="also the harder scenes, e.g. yaw,depth,occlusion,lowlight")
    parser.add_argument("--scene-seeds", type=int, default=2)
    parser.add_argument("--results", default=None, help="also write the 'tracking' section of this file (docs/RESULTS.md)")
    args = parser.parse_args(argv)
    out: list[str] = []

    def emit(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    rows = simulated_table(args.seeds, args.max_age, args.min_length)
    emit(f"simulated detections, {args.seeds} seeds per scenario, max_age {args.max_age}, min_length {args.min_length}")
    emit(format_table(rows))
    if args.video:
        width, height = (int(v) for v in args.video_size.split("x"))
        emit()
        emit(f"real detector (MTCNN) on the demo's {width}x{height} walk-bys, seeds 0..{args.video_seeds - 1}")
        emit(format_table(video_table(range(args.video_seeds), args.max_age, args.min_length, width, height)))
    if args.scenes:
        scenes = [s.strip() for s in args.scenes.split(",") if s.strip()]
        emit()
        emit(f"real detector (MTCNN) on the harder scenes (eval/scenes/hard.py), seeds 0..{args.scene_seeds - 1}")
        emit(format_table(scenes_table(scenes, range(args.scene_seeds), args.max_age, args.min_length)))
    if args.results:
        from pathlib import Path

        from snapseal.eval.report import replace_section

        command = " ".join(["python -m snapseal.eval.scenes.track_eval", *(argv if argv is not None else sys.argv[1:])])
        replace_section(Path(args.results), "tracking", (
            "## Tracking: one record per person\n\n"
            f"Regenerate with `{command}`. 'exactly 1' = people with exactly one track long enough to seal; "
            "'fragm.' = people split over several; 'merged' / 'mixed' = tracks holding two people; 'iou' is the "
            "daemon's tracker (daemon/track.py: a lost track can come back when the motion model says so), "
            "'iou-noreid' the same tracker ending a track after max_age as before, 'distance' the paper's.\n\n"
            "```\n" + "\n".join(out) + "\n```\n"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
