"""Collect the tracks of the test videos with the daemon's own stages, then compare selections.

Videos: the synthetic walk-by (``snapseal.eval.scenes``; its ground truth
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
from snapseal.daemon.crop import crop_face, evidence_images, face_box_in_evidence
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
    evidence: list[np.ndarray] = field(default_factory=list)  # the sealed colour evidence image per crop
    evidence_boxes: list[Box] = field(default_factory=list)  # the face box inside it

    def view(self, name: str) -> tuple[list[np.ndarray], list[Box]]:
        """What a recogniser is given: ``"evidence"`` (the sealed colour image) or ``"crop"`` (64x64 grey)."""
        if name == "evidence":
            return self.evidence, self.evidence_boxes
        return [cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) for c in self.crops], [box_in_crop(d) for d in self.detections]


VIEWS = ("evidence", "crop")


def evidence_of(image: np.ndarray, detection: Detection) -> tuple[np.ndarray, Box]:
    """The daemon's evidence image of one detection (default settings) and the face box in it."""
    (evidence,) = evidence_images(image, detection)[:1]
    return evidence.pixels, Box(*face_box_in_evidence(evidence, detection))


def run_tracks(video: str, frames: Iterable[np.ndarray], labeller=None, progress: bool = True,
               short: list | None = None) -> list[RawTrack]:
    """Detect, track and crop every frame like the daemon; optional ground-truth labeller
    ``(frame_index, detections) -> labels``. Tracks too short to seal are left out of the result
    and, when ``short`` is given, appended to it as RawTracks (the run summary lists them)."""
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
        step = tracker.update(detections, index, (image.shape[1], image.shape[0]))
        labels = labeller(index, detections) if labeller else [None] * len(detections)
        for detection, track_id, label in zip(detections, step.track_ids, labels):
            track = tracks.setdefault(track_id, RawTrack(video, track_id))
            track.frame_indices.append(index)
            track.crops.append(crop_face(image, detection))
            track.detections.append(detection)
            track.on_edge.append(on_frame_edge(detection.box, image.shape))
            track.labels.append(label)
            pixels, box = evidence_of(image, detection)
            track.evidence.append(pixels)
            track.evidence_boxes.append(box)
        long_enough.update(info.track_id for info in step.ended if info.long_enough)
    long_enough.update(info.track_id for info in tracker.finish() if info.long_enough)
    if short is not None:
        short += [tracks[i] for i in sorted(tracks) if i not in long_enough]
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
    walker_evidence_references: dict[str, tuple[np.ndarray, Box]] = field(default_factory=dict)  # colour, box
    groups: dict[str, str] = field(default_factory=dict)  # identity -> the photo it is made of (who it is)
    people: dict[str, list[str]] = field(default_factory=dict)  # video -> identities that appear visibly
    short: list[tuple[RawTrack, str]] = field(default_factory=list)  # too short to seal, (track, identity or "")
    carphone_pristine: list[RawTrack] = field(default_factory=list)  # its crops make the template
    notes: list[str] = field(default_factory=list)


def _embed_track(raw: RawTrack, embedder: CachedEmbedder, view: str = "crop") -> np.ndarray:
    images, boxes = raw.view(view)
    return embedder.embed(images, boxes)


def _track_crops(raw: RawTrack, identity: str, distances: np.ndarray) -> TrackCrops:
    return TrackCrops(
        video=raw.video, track_id=raw.track_id, identity=identity,
        frame_indices=np.array(raw.frame_indices), crops=np.stack(raw.crops),
        face_area_px=np.array([d.box.area for d in raw.detections]), on_edge=np.array(raw.on_edge),
        confidence=np.array([d.confidence for d in raw.detections]), distances=distances,
    )


def collect_videos(carphone_pristine: Path | None, carphone_distorted: Path | None, walkby_seeds: int = 1,
                   progress: bool = True, scenes: Sequence[str] = (), scene_seeds: int = 1) -> CollectedVideos:
    collected = CollectedVideos()
    for seed in range(walkby_seeds):
        _collect_walkby(collected, seed, progress)
    for scene in scenes:
        for seed in range(scene_seeds):
            _collect_scene(collected, scene, seed, progress)
    if carphone_pristine is not None and carphone_pristine.is_file():
        collected.carphone_pristine = run_tracks("carphone (pristine)", list(read_video(carphone_pristine)),
                                                 progress=progress)
        collected.labelled += [(t, "carphone") for t in collected.carphone_pristine]
        collected.groups["carphone"] = "carphone"
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

    _collect_plan(collected, f"walk-by ({video.name})", f"walker-{seed}", plan, list(read_video(video)), patches,
                  patch_detector, progress)


def _collect_scene(collected: CollectedVideos, scene: str, seed: int, progress: bool) -> None:
    """One harder scene (eval/scenes/hard.py), rendered in memory (no video codec)."""
    from snapseal.eval.scenes.assets import load_face_patches
    from snapseal.eval.scenes.hard import plan_scene
    from snapseal.eval.scenes.walkby import render_frames

    detector_config = DetectorConfig()
    patch_detector = make_detector(min_face_px=detector_config.min_face_px, confidence=detector_config.confidence)
    patches = load_face_patches(patch_detector)
    plan = plan_scene(scene, len(patches), seed)
    _collect_plan(collected, f"{scene} (seed {seed})", f"{scene}-{seed}", plan, list(render_frames(plan, patches)),
                  patches, patch_detector, progress)


def _collect_plan(collected: CollectedVideos, video: str, prefix: str, plan, frames: list, patches, patch_detector,
                  progress: bool) -> None:
    """Tracks of one composed video with its plan (the ground truth): labelled by walker."""
    from snapseal.eval.scenes.track_eval import label_detections

    by_frame = plan.truth_by_frame()

    def labeller(index: int, detections: Sequence[Detection]) -> list[object]:
        return [item.person_id for item in label_detections(by_frame.get(index, []), detections)]

    short: list[RawTrack] = []
    raw_tracks = run_tracks(video, frames, labeller, progress, short=short)
    collected.people[video] = [f"{prefix}.{p}" for p in sorted({t.person_id for t in plan.truth if t.visible})]
    for walker in plan.walkers:  # the clean reference: the walker's photo, cropped like any crop
        patch = patches[walker.patch_index % len(patches)]
        detection = _face_in_patch(patch, patch_detector)
        identity = f"{prefix}.{walker.person_id}"
        collected.walker_references[identity] = (crop_face(patch.image_bgr, detection), box_in_crop(detection))
        collected.walker_evidence_references[identity] = evidence_of(patch.image_bgr, detection)
        collected.groups[identity] = f"photo {walker.patch_index % len(patches)}"
    for raw in short:
        known = [label for label in raw.labels if label is not None]
        collected.short.append((raw, f"{prefix}.{Counter(known).most_common(1)[0][0]}" if known else ""))
    for raw in raw_tracks:
        known = [label for label in raw.labels if label is not None]
        if not known:
            collected.notes.append(f"{raw.video} track {raw.track_id}: matches no walker (a false track), skipped")
            continue
        person, votes = Counter(known).most_common(1)[0]
        if votes < 0.8 * len(raw.labels):
            collected.notes.append(f"{raw.video} track {raw.track_id}: mixes people ({votes}/{len(raw.labels)} "
                                   f"crops are walker {person})")
        collected.labelled.append((raw, f"{prefix}.{person}"))


def embed_videos(collected: CollectedVideos, embedder: CachedEmbedder, view: str = "crop",
                 progress: bool = False) -> VideoTracks:
    """Distances of every crop to its person's clean reference, for one embedder, as the recogniser
    sees the view: ``"evidence"`` (the sealed colour image) or ``"crop"`` (the 64x64 grey model
    crop). The reference is the same for both views, the person's clean photo in colour at its own
    resolution (cut like an evidence image; for carphone the mean embedding of the pristine clip's
    evidence images), so the two views' distances compare directly."""
    references = {identity: embedder.embed([image], [box])[0]
                  for identity, (image, box) in collected.walker_evidence_references.items()}
    if collected.carphone_pristine:
        template = np.concatenate([_embed_track(t, embedder, "evidence") for t in collected.carphone_pristine]).mean(axis=0)
        references["carphone"] = template / np.linalg.norm(template)
    images: list[np.ndarray] = []
    boxes: list[Box] = []
    for raw, _ in collected.labelled:  # one call, one progress bar, for every crop of every track
        track_images, track_boxes = raw.view(view)
        images += track_images
        boxes += track_boxes
    rows = embedder.embed(images, boxes, progress=f"embedding the {view} view" if progress else None)
    tracks, start = [], 0
    for raw, identity in collected.labelled:
        end = start + len(raw.crops)
        tracks.append(_track_crops(raw, identity, np.linalg.norm(rows[start:end] - references[identity], axis=1)))
        start = end
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


def score_tracks(collected: CollectedVideos, methods: MethodSet, progress: bool = False) -> dict[str, list[np.ndarray]]:
    """Every method's score for every crop of every track, computed once (embedder-independent)."""
    scores: dict[str, list[np.ndarray]] = {}
    iterator = methods.methods
    if progress:
        from tqdm import tqdm

        iterator = tqdm(methods.methods, desc=f"scoring {sum(len(r.crops) for r, _ in collected.labelled)} crops",
                        unit="method")
    for method in iterator:
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
