"""Face crops from any folder of images (recursive).

Identities: an identity-labelled layout ``root/<person>/*.jpg`` (LFW, VGGFace2, ...) gives
every image under ``root/<person>/`` the identity ``<person>``; an image directly in ``root``
is its own identity (its file stem). Files that are not readable images are skipped with a
warning; a missing root is a ``SnapsealError``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from snapseal.daemon.crop import DEFAULT_VARIANT
from snapseal.daemon.detect import Detector
from snapseal.quantize.data.common import (
    DEFAULT_MIN_FACE_PX,
    IMAGE_SUFFIXES,
    LOG,
    FaceSample,
    default_detector,
    faces_in_image,
    read_image,
    resolve_path,
)


def identity_of(root: Path, image_path: Path) -> str:
    """``<person>`` for root/<person>/..., else the file's stem."""
    parts = image_path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else image_path.stem


def iter_folder(
    root: str | os.PathLike[str],
    *,
    detector: Detector | None = None,
    variant: str = DEFAULT_VARIANT,
    min_face_px: float = DEFAULT_MIN_FACE_PX,
    max_faces_per_image: int | None = None,
    source: str = "folder",
    progress: bool = False,
) -> Iterator[FaceSample]:
    """Every face in every image under root (sorted order, deterministic)."""
    root_path = resolve_path(root, "image folder")
    if root_path.is_file():
        paths, root_path = [root_path], root_path.parent
    else:
        paths = sorted(p for p in root_path.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(root_path).parts))
    others = [p for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        LOG.warning("skipping %d non-image file(s) in %s, e.g. %s", len(others), root_path, others[0].name)
    images = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    detector = default_detector(detector, min_face_px)
    if progress:
        from tqdm import tqdm

        images = tqdm(images, desc=f"faces in {root_path.name}", unit="img")
    for path in images:
        image = read_image(path)
        if image is None:
            continue
        yield from faces_in_image(
            image,
            detector,
            identity=identity_of(root_path, path),
            source=source,
            origin=str(path),
            variant=variant,
            min_face_px=min_face_px,
            max_faces=max_faces_per_image,
        )
