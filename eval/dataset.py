"""The faces the evaluation compares: references, probes and who is who.

Two sources, one shape (``EvalSet``):

* ``offline_set``: faces that ship in packages and that the quality model did NOT train on
  (the bootstrap split's validation identities). Reference = the clean crop of each identity's
  first face. Probes = degraded copies of every face of that identity (eval/model/degrade.py's
  suite ``snapseal.eval.model.degrade``: blur, motion, noise, JPEG, downscale, dark, occlusion,
  off-centre; 3 levels each) + pose-like warps (``eval.warps``), the clean crops of the
  identity's OTHER faces (another photo, another video frame), and real video frames (the
  carphone clip's distorted version).
* ``folder_set``: a user's identity-labelled folder ``root/<person>/*.jpg`` (LFW, VGGFace2),
  read by the folder loader (``snapseal.quantize.data.folder.iter_folder``).
  Reference = each person's first image (sorted), probes = the others.

What the recognizer sees: by default the 64x64 grey crop, i.e. exactly what a sealed record
holds and an investigator would compare (``recognizer_input="crop"``). For a user folder,
``recognizer_input="image"`` gives the recognizer the original colour image around the face
instead, as in the paper's LFW/VGGFace2 figures (degradations are not applied there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from snapseal.daemon.crop import REGION_SIZE, crop_face, crop_transform, warp_region
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import Box, Detection
from snapseal.eval.methods import on_frame_edge
from snapseal.eval.warps import POSE_WARPS, pose_warp
from snapseal.eval.model.degrade import DEGRADATIONS, DOWNSCALE_FACTOR, LEVELS, FaceRegion, clean_crop, degrade

LOG = logging.getLogger("snapseal.eval")

CONTEXT = 2  # the region cut for degradations is this many crop sides wide (off-centre needs room)


@dataclass(frozen=True)
class EvalFace:
    identity: str
    key: str  # unique and stable: origin + condition
    condition: str  # "reference", "clean", "blur-2", "yaw-1", "video", ...
    crop: np.ndarray  # 64 x 64 uint8 grey: what every quality method sees
    face_area_px: float  # detection box area in the frame the face was seen in
    on_edge: bool
    confidence: float
    recognizer_image: np.ndarray  # BGR, what the embedder sees
    recognizer_box: Box  # the face box inside recognizer_image


@dataclass
class EvalSet:
    name: str
    description: str
    references: dict[str, EvalFace] = field(default_factory=dict)
    probes: list[EvalFace] = field(default_factory=list)

    def conditions(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for probe in self.probes:
            family = probe.condition.split("-")[0]
            counts[family] = counts.get(family, 0) + 1
        return counts


@dataclass(frozen=True)
class SourceFace:
    """A detected face in a real image or frame."""

    identity: str
    origin: str
    image_bgr: np.ndarray
    detection: Detection


def box_in_crop(detection: Detection, size: int = 64) -> Box:
    """The detection box in the crop's pixels (the box variant of ``daemon.crop``)."""
    matrix = crop_transform(detection, "box", size)
    box = detection.box
    (x1, y1), (x2, y2) = (matrix[:, :2] @ np.array([[box.x1, box.x2], [box.y1, box.y2]]) + matrix[:, 2:]).T
    return Box(float(x1), float(y1), float(x2), float(y2))


def wide_region(face: SourceFace) -> FaceRegion:
    """The face with context around it, at the crop's framing: ``CONTEXT`` crop sides wide,
    REGION_SIZE px per crop side, cut by the daemon's own warp (one crop definition)."""
    matrix = crop_transform(face.detection, "box", REGION_SIZE).copy()
    offset = (CONTEXT - 1) * REGION_SIZE / 2.0
    matrix[:, 2] += offset
    image = warp_region(face.image_bgr, matrix, CONTEXT * REGION_SIZE)
    return FaceRegion(image, (offset, offset, offset + REGION_SIZE, offset + REGION_SIZE))


def _as_crop_face(face: SourceFace, condition: str, crop: np.ndarray, area_scale: float = 1.0) -> EvalFace:
    box = face.detection.box
    return EvalFace(
        identity=face.identity,
        key=f"{face.origin}|{condition}",
        condition=condition,
        crop=crop,
        face_area_px=float(box.area) * area_scale,
        on_edge=on_frame_edge(box, face.image_bgr.shape),
        confidence=float(face.detection.confidence),
        recognizer_image=cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR),
        recognizer_box=box_in_crop(face.detection),
    )


def degraded_probes(face: SourceFace, seeds: Sequence[int] = (0,)) -> list[EvalFace]:
    """Every degradation and pose-like warp of one face, 3 levels each. Degradations with a
    random part (motion direction, noise, occluder, shift) get one probe per seed; a seed that
    gives the same pixels as the first (a deterministic degradation) adds nothing."""
    region = wide_region(face)
    probes = []
    for kind in DEGRADATIONS:
        for level in LEVELS:
            first = None
            for seed in seeds:
                crop = degrade(region, kind, level, seed)
                if first is not None and np.array_equal(crop, first):
                    break
                first = crop if first is None else first
                # a face imaged at 1/f the resolution has 1/f^2 the box area (Frigate sees that)
                scale = 1.0 / DOWNSCALE_FACTOR[level] ** 2 if kind == "downscale" else 1.0
                probes.append(_as_crop_face(face, f"{kind}-{level}" + (f"-s{seed}" if seed else ""), crop, scale))
    for kind in POSE_WARPS:
        for level in LEVELS:
            probes.append(_as_crop_face(face, f"{kind}-{level}", pose_warp(region, kind, level)))
    return probes


def clean_face(face: SourceFace, condition: str) -> EvalFace:
    return _as_crop_face(face, condition, clean_crop(wide_region(face)))


def offline_set(faces_by_identity: dict[str, list[SourceFace]],
                videos: Sequence[tuple[SourceFace, Sequence[tuple[str, SourceFace]]]] = (),
                description: str = "", seeds: Sequence[int] = (0,), progress: bool = True) -> EvalSet:
    """References and probes from real faces (see the module doc). ``videos``: per filmed
    person, the reference frame's face and (condition, face) probes from other frames."""
    result = EvalSet("offline", description)
    identities = sorted(faces_by_identity)
    iterator: Iterable[str] = identities
    if progress:
        from tqdm import tqdm

        iterator = tqdm(identities, desc="degraded probes", unit="person")
    for identity in iterator:
        faces = faces_by_identity[identity]
        if not faces:
            continue
        result.references[identity] = clean_face(faces[0], "reference")
        for index, face in enumerate(faces):
            if index > 0:
                result.probes.append(clean_face(face, "clean"))
            result.probes.extend(degraded_probes(face, seeds))
    for reference, probes in videos:
        result.references[reference.identity] = _as_crop_face(
            reference, "reference", crop_face(reference.image_bgr, reference.detection, "box"))
        for condition, face in probes:
            result.probes.append(_as_crop_face(face, condition, crop_face(face.image_bgr, face.detection, "box")))
    return result


def folder_set(root: str | Path, recognizer_input: str = "crop", max_identities: int | None = None,
               max_per_identity: int = 10, min_face_px: float = 40, progress: bool = True) -> EvalSet:
    """A user's identity-labelled folder through the folder loader."""
    from snapseal.quantize.data.folder import iter_folder

    if recognizer_input not in ("crop", "image"):
        raise SnapsealError(f"recognizer input must be 'crop' or 'image', got {recognizer_input!r}")
    root = Path(root)
    by_identity: dict[str, list[EvalFace]] = {}
    for sample in iter_folder(root, min_face_px=min_face_px, max_faces_per_image=1, progress=progress):
        if sample.identity not in by_identity and max_identities is not None and len(by_identity) >= max_identities:
            break  # the loader walks the folder in sorted order: every later person is new too
        faces = by_identity.setdefault(sample.identity, [])
        if len(faces) >= max_per_identity or sample.detection is None:
            continue
        detection = sample.detection
        image_path = Path(sample.origin.split("#face")[0])
        if recognizer_input == "image":
            image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
            recognizer_image, recognizer_box = _tight_region(image, detection.box)
            shape = image.shape
        else:
            recognizer_image = cv2.cvtColor(sample.crop, cv2.COLOR_GRAY2BGR)
            recognizer_box = box_in_crop(detection)
            shape = _image_shape(image_path)
        faces.append(EvalFace(
            identity=sample.identity, key=sample.origin, condition="folder", crop=sample.crop,
            face_area_px=float(detection.box.area), on_edge=on_frame_edge(detection.box, shape),
            confidence=float(detection.confidence), recognizer_image=recognizer_image,
            recognizer_box=recognizer_box,
        ))
    result = EvalSet("folder", f"identity-labelled folder {root} (recognizer sees the {recognizer_input})")
    for identity in sorted(by_identity):
        faces = by_identity[identity]
        if len(faces) < 2:
            continue  # a person with one image has no genuine comparison
        result.references[identity] = faces[0]
        result.probes.extend(faces[1:])
    if not result.probes:
        raise SnapsealError(f"{root}: no person with two or more detectable faces (layout root/<person>/*.jpg)")
    return result


def _image_shape(path: Path) -> tuple[int, int]:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return image.shape if image is not None else (0, 0)


def _tight_region(image: np.ndarray, box: Box, margin: float = 0.6) -> tuple[np.ndarray, Box]:
    """The face plus ``margin`` box sides around it (keeps memory bounded for big folders)."""
    height, width = image.shape[:2]
    x1 = int(max(0, np.floor(box.x1 - margin * box.width)))
    y1 = int(max(0, np.floor(box.y1 - margin * box.height)))
    x2 = int(min(width, np.ceil(box.x2 + margin * box.width)))
    y2 = int(min(height, np.ceil(box.y2 + margin * box.height)))
    return image[y1:y2, x1:x2].copy(), Box(box.x1 - x1, box.y1 - y1, box.x2 - x1, box.y2 - y1)


def bootstrap_val_faces(assets_dir: Path, bootstrap_dir: Path) -> dict[str, list[SourceFace]]:
    """The bootstrap split's validation people (no train source shows them), re-read at full
    resolution from the assets so degradations act on the real frame around the face."""
    from snapseal.quantize.data.bootstrap import detection_from_arrays

    path = Path(bootstrap_dir) / "val_sources.npz"
    if not path.is_file():
        raise SnapsealError(f"bootstrap validation set not built: {path} missing (run `make data`)")
    faces: dict[str, list[SourceFace]] = {}
    images: dict[tuple[str, int], np.ndarray] = {}
    with np.load(path) as data:
        rows = zip(data["frame_path"], data["frame_index"], data["boxes"], data["landmarks"], data["identity"])
        for number, (frame_path, frame_index, box, landmarks, identity) in enumerate(rows):
            key = (str(frame_path), int(frame_index))
            if key not in images:
                images[key] = _read_frame(Path(assets_dir) / key[0], key[1])
            origin = f"{key[0]}@{key[1]}#{number}" if key[1] >= 0 else f"{key[0]}#{number}"
            faces.setdefault(str(identity), []).append(
                SourceFace(str(identity), origin, images[key], detection_from_arrays(box, landmarks)))
    return faces


def video_faces(path: Path, identity: str, every_nth: int = 3, progress: bool = True) -> list[SourceFace]:
    """The largest face in every n-th frame of a video, found by the daemon's detector."""
    from snapseal.daemon.config import DetectorConfig
    from snapseal.daemon.detect import make_detector

    config = DetectorConfig()
    detector = make_detector(min_face_px=config.min_face_px, confidence=config.confidence)
    capture = cv2.VideoCapture(str(path))
    faces = []
    index = -1
    try:
        while capture.grab():
            index += 1
            if index % every_nth:
                continue
            ok, frame = capture.retrieve()
            if not ok:
                break
            detections = sorted(detector.detect(frame), key=lambda d: -d.box.area)
            if detections:
                faces.append(SourceFace(identity, f"{path.name}@{index}", frame, detections[0]))
    finally:
        capture.release()
    if not faces:
        raise SnapsealError(f"no face found in video {path}")
    return faces


def _read_frame(path: Path, frame_index: int) -> np.ndarray:
    if frame_index < 0:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    else:
        capture = cv2.VideoCapture(str(path))
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
        ok, image = capture.read()
        capture.release()
        image = image if ok else None
    if image is None:
        raise SnapsealError(f"cannot read {path}" + (f" frame {frame_index}" if frame_index >= 0 else ""))
    return image
