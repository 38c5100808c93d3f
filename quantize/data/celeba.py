"""Face crops from CelebA in its own layout, as the paper trains.

    root/img_align_celeba/000001.jpg ...
    root/list_eval_partition.txt      "000001.jpg 0" (0 = train, 1 = val, 2 = test)
    root/identity_CelebA.txt          optional: "000001.jpg 2880" (identity numbers)

Each image is run through the detector (MTCNN, as the paper) and the largest face is cropped.
Without identity_CelebA.txt the identity is unknown and the file name stands in for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from snapseal.daemon.crop import DEFAULT_VARIANT
from snapseal.daemon.detect import Detector
from snapseal.daemon.errors import SnapsealError
from snapseal.quantize.data.common import (
    DEFAULT_MIN_FACE_PX,
    FaceSample,
    default_detector,
    faces_in_image,
    read_image,
    resolve_path,
)

PARTITIONS = {"train": 0, "val": 1, "test": 2}
IMAGE_DIR = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"


def is_celeba_root(path: Path) -> bool:
    return (path / IMAGE_DIR).is_dir() and (path / PARTITION_FILE).is_file()


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line_number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SnapsealError(f"{path}:{line_number}: expected 'FILE VALUE', got {line!r}")
        pairs.append((fields[0], fields[1]))
    return pairs


def read_partition(root: str | os.PathLike[str]) -> dict[str, int]:
    """file name -> partition number (0 train, 1 val, 2 test)."""
    path = resolve_path(Path(root) / PARTITION_FILE, "CelebA partition file")
    partition = {}
    for name, value in _read_pairs(path):
        if value not in ("0", "1", "2"):
            raise SnapsealError(f"{path}: partition of {name} must be 0, 1 or 2, got {value!r}")
        partition[name] = int(value)
    return partition


def iter_celeba(
    root: str | os.PathLike[str],
    split: str | None = "train",
    *,
    detector: Detector | None = None,
    variant: str = DEFAULT_VARIANT,
    min_face_px: float = DEFAULT_MIN_FACE_PX,
    limit: int | None = None,
    progress: bool = False,
) -> Iterator[FaceSample]:
    """The largest face of each image of one split ("train", "val", "test"; None = all)."""
    root_path = resolve_path(root, "CelebA root")
    image_dir = resolve_path(root_path / IMAGE_DIR, "CelebA image folder")
    partition = read_partition(root_path)
    if split is not None and split not in PARTITIONS:
        raise SnapsealError(f"unknown CelebA split {split!r}; choose one of {', '.join(PARTITIONS)}")
    names = sorted(n for n, p in partition.items() if split is None or p == PARTITIONS[split])
    if limit is not None:
        names = names[:limit]
    identity_path = root_path / IDENTITY_FILE
    identities = dict(_read_pairs(identity_path)) if identity_path.is_file() else {}
    detector = default_detector(detector, min_face_px)
    if progress:
        from tqdm import tqdm

        names = tqdm(names, desc=f"CelebA {split or 'all'}", unit="img")
    for name in names:
        image = read_image(image_dir / name)
        if image is None:
            continue
        yield from faces_in_image(
            image,
            detector,
            identity=f"celeba:{identities.get(name, name)}",
            source="celeba",
            origin=str(image_dir / name),
            variant=variant,
            min_face_px=min_face_px,
            max_faces=1,
        )
