"""Collect the tracks of the test videos with the daemon's own stages, then compare selections.

Videos: the pipeline engineer's synthetic walk-by (``snapseal.eval.scenes``; its ground truth
tells who every detection is and which photo each walker is made of) and the real carphone
clip (pristine and distorted; one person). Stages are the daemon's: ``make_detector`` with the
daemon's default ``[detector]`` settings, ``make_tracker`` with its default ``[tracker]``, and
``daemon.crop``. References: for a walker, the clean crop of the photo it is composed from;
for carphone, the normalised mean embedding of every pristine frame's crop (a template that
favours no single frame).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from snapseal.daemon.config import DetectorConfig, TrackerConfig
from snapseal.daemon.capture import read_video_frames
from snapseal.daemon.crop import crop_face
from snapseal.daemon.detect import make_detector
from snapseal.daemon.track import make_tracker
from snapseal.daemon.types import Box, Detection
from snapseal.eval.dataset import box_in_crop
from snapseal.eval.embedding_cache import CachedEmbedder
from snapseal.eval.methods import MethodSet, ProbeBatch, on_frame_edge
from snapseal.eval.selection import (TrackCrops, argmax_choice, frigate_choice, summarise, summarise_random,
                                     SelectionSummary)

LOG = logging.getLogger("snapseal.eval")


@dataclass
class RawTrack:
    video: str
    track_id: int
    frame_indices: list[int] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    on_edge: list[bool] = field(default_factory=list)
    labels: list[object] = field(default_factory=list)  # ground-truth person per crop (None: unknown)


def run_tracks(video: str, frames: Iterable[np.ndarray], labeller=None, progress: bool = True) -> list[RawTrack]:
    """Detect, track and crop every frame like the daemon; optional ground-truth labeller
    ``(frame_index, detections) -> labels``."""
    detector_config, tracker_config = DetectorConfig(), TrackerConfig()
    detector = make_detector(min_face_px=detector_config.min_face_px, confidence=detector_config.confidence)
    tracker = make_tracker(tracker_config.kind, tracker_config.max_age_frames, tracker_config.min_length_frames)
    tracks: dict[int, RawTrack] = {}
    long_enough: set[int] = set()
    iterator = frames
    if progress:
        from tqdm import tqdm

        iterator = tqdm(frames, desc=f"tracks in {video}", unit="frame")
    for index, image in enumerate(iterator):
        detections = detector.detect(image)
        step = tracker.update(detections, index)
        labels = labeller(index, detections) if labeller else [None] * len(detections)
        for detection, track_id, label in zip(detections, step.track_ids, labels):
            track = tracks.setdefault(track_id, RawTrack(video, track_id))
            track.frame_indices.append(index)
            track.crops.append(crop_face(image, detection))
            track.detections.append(detection)
            track.on_edge.append(on_frame_edge(detection.box, image.shape))
            track.labels.append(label)
        long_enough.update(info.track_id for info in step.ended if info.long_enough)
    long_enough.update(info.track_id for info in tracker.finish() if info.long_enough)
    return [tracks[i] for i in sorted(tracks) if i in long_enough]


read_video = read_video_frames  # the one frame reader (daemon/capture.py)


@dataclass
class VideoTracks:
    tracks: list[TrackCrops]
    notes: list[str]


@dataclass
class CollectedVideos:
    """Tracks of the test videos, detected and tracked ONCE, embedded per embedder later."""

    labelled: list[tuple[RawTrack, str]] = field(default_factory=list)  # (track, identity)
    walker_references: dict[str, tuple[np.ndarray, Box]] = field(default_factory=dict)  # identity -> crop, box
    carphone_pristine: list[RawTrack] = field(default_factory=list)  # its crops make the template
    notes: list[str] = field(default_factory=list)


def _embed_track(raw: RawTrack, embedder: CachedEmbedder) -> np.ndarray:
    images = [cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) for c in raw.crops]
    boxes = [box_in_crop(d) for d in raw.detections]
    return embedder.embed(images, boxes)


def _track_crops(raw: RawTrack, identity: str, distances: np.ndarray) -> TrackCrops:
    return TrackCrops(
        video=raw.video, track_id=raw.track_id, identity=identity,
        frame_indices=np.array(raw.frame_indices), crops=np.stack(raw.crops),
        face_area_px=np.array([d.box.area for d in raw.detections]), on_edge=np.array(raw.on_edge),
        confidence=np.array([d.confidence for d in raw.detections]), distances=distances,
    )


def collect_videos(carphone_pristine: Path | None, carphone_distorted: Path | None, walkby_seeds: int = 1,
                   progress: bool = True) -> CollectedVideos:
    collected = CollectedVideos()
    for seed in range(walkby_seeds):
        _collect_walkby(collected, seed, progress)
    if carphone_pristine is not None and carphone_pristine.is_file():
        collected.carphone_pristine = run_tracks("carphone (pristine)", list(read_video(carphone_pristine)),
                                                 progress=progress)
        collected.labelled += [(t, "carphone") for t in collected.carphone_pristine]
        if carphone_distorted is not None and carphone_distorted.is_file():
            distorted = run_tracks("carphone (distorted)", list(read_video(carphone_distorted)), progress=progress)
            collected.labelled += [(t, "carphone") for t in distorted]
        else:
            collected.notes.append("carphone_distorted.mp4 not found: only the pristine clip was used")
    else:
        collected.notes.append("carphone_pristine.mp4 not found (run `make data`)")
    return collected


def _collect_walkby(collected: CollectedVideos, seed: int, progress: bool) -> None:
    """The demo's walk-by video for ``seed`` (seed 0 is ``make demo``'s input; made here if
    missing, by the demo's own function) and its plan, the ground truth."""
    from snapseal.eval.scenes import walkby
    from snapseal.eval.scenes.demo import WALKBY_PEOPLE, ensure_walkby
    from snapseal.eval.scenes.assets import REPO_ROOT, load_face_patches
    from snapseal.eval.scenes.track_eval import label_detections

    detector_config = DetectorConfig()
    patch_detector = make_detector(min_face_px=detector_config.min_face_px, confidence=detector_config.confidence)
    video = ensure_walkby(REPO_ROOT / "build" / "demo" / "input", patch_detector, seed=seed)
    patches = load_face_patches(patch_detector)
    # the same plan ensure_walkby renders (deterministic in its seed): the ground truth
    plan = walkby.plan_walkby(640, 480, n_people=WALKBY_PEOPLE, frames_per_person=100, n_patches=len(patches), seed=seed)
    by_frame = plan.truth_by_frame()

    def labeller(index: int, detections: Sequence[Detection]) -> list[object]:
        return [item.person_id for item in label_detections(by_frame.get(index, []), detections)]

    raw_tracks = run_tracks(f"walk-by ({video.name})", list(read_video(video)), labeller, progress)
    for walker in plan.walkers:  # the clean reference: the walker's photo, cropped like any crop
        patch = patches[walker.patch_index % len(patches)]
        detection = _face_in_patch(patch, patch_detector)
        collected.walker_references[f"walker-{seed}.{walker.person_id}"] = (crop_face(patch.image_bgr, detection),
                                                                            box_in_crop(detection))
    for raw in raw_tracks:
        known = [label for label in raw.labels if label is not None]
        if not known:
            collected.notes.append(f"{raw.video} track {raw.track_id}: matches no walker (a false track), skipped")
            continue
        person, votes = Counter(known).most_common(1)[0]
        if votes < 0.8 * len(raw.labels):
            collected.notes.append(f"{raw.video} track {raw.track_id}: mixes people ({votes}/{len(raw.labels)} "
                                   f"crops are walker {person})")
        collected.labelled.append((raw, f"walker-{seed}.{person}"))


def embed_videos(collected: CollectedVideos, embedder: CachedEmbedder) -> VideoTracks:
    """Distances of every crop to its person's clean reference, for one embedder."""
    references = {identity: embedder.embed([cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)], [box])[0]
                  for identity, (crop, box) in collected.walker_references.items()}
    if collected.carphone_pristine:
        template = np.concatenate([_embed_track(t, embedder) for t in collected.carphone_pristine]).mean(axis=0)
        references["carphone"] = template / np.linalg.norm(template)
    tracks = [_track_crops(raw, identity, np.linalg.norm(_embed_track(raw, embedder) - references[identity], axis=1))
              for raw, identity in collected.labelled]
    embedder.save()
    return VideoTracks(tracks, list(collected.notes))


def _face_in_patch(patch, detector) -> Detection:
    """The detection on the clean photo patch that overlaps the patch's face box most."""
    target = patch.face_box
    best, best_iou = None, 0.0
    for detection in detector.detect(patch.image_bgr):
        box = detection.box
        ix = max(0.0, min(box.x2, target.x2) - max(box.x1, target.x1))
        iy = max(0.0, min(box.y2, target.y2) - max(box.y1, target.y1))
        inter = ix * iy
        iou = inter / (box.area + target.area - inter) if inter > 0 else 0.0
        if iou > best_iou:
            best, best_iou = detection, iou
    if best is None:  # the patch's own box, without landmarks: the box crop needs none
        best = Detection(target, np.zeros((5, 2), np.float32), 1.0)
    return best


def score_tracks(collected: CollectedVideos, methods: MethodSet) -> dict[str, list[np.ndarray]]:
    """Every method's score for every crop of every track, computed once (embedder-independent)."""
    scores: dict[str, list[np.ndarray]] = {}
    for method in methods.methods:
        per_track = []
        for raw, _identity in collected.labelled:
            batch = ProbeBatch(np.stack(raw.crops), np.array([d.box.area for d in raw.detections]),
                               np.array(raw.on_edge), np.array([d.confidence for d in raw.detections]),
                               tuple(f"{raw.video}:{raw.track_id}:{i}" for i in raw.frame_indices))
            per_track.append(np.asarray(method.score(batch), np.float64))
        scores[method.name] = per_track
    return scores


def select(tracks: Sequence[TrackCrops], scores: dict[str, list[np.ndarray]]) -> tuple[list[SelectionSummary], dict[str, list[int]]]:
    """Every method's choice on every track (tracks in ``collect_videos`` order), summarised."""
    choices: dict[str, list[int]] = {name: [argmax_choice(values) for values in per_track]
                                     for name, per_track in scores.items()}
    choices["Frigate rule (sequential)"] = [frigate_choice(t.confidence, t.face_area_px, t.on_edge) for t in tracks]
    choices["PERFECT (oracle)"] = [int(np.argmin(t.distances)) for t in tracks]
    summaries = [summarise(name, list(tracks), picked) for name, picked in choices.items() if name != "random"]
    summaries.append(summarise_random(list(tracks)))
    return summaries, choices
