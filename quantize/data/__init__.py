"""Face crops for training and evaluation, made by the daemon's own detector and crop code.

The API the rest of the project uses (all crops are 64 x 64 uint8 grayscale, the VAE's input):

    from snapseal.quantize.data import iter_crops, iter_samples, load_bootstrap

    iter_crops(data_spec: str, *, split="train", variant=DEFAULT_VARIANT, every_nth=5,
               min_face_px=40) -> Iterator[np.ndarray]            # one 64x64 uint8 crop each
    iter_samples(data_spec, ...) -> Iterator[FaceSample]           # + 128 px region, identity, ...
    load_bootstrap(split="train"|"val", data_dir=None, min_face_px=0.0) -> BootstrapSplit
        # .crops N x 64 x 64, .regions N x 128 x 128, .identity, .source, .origin, .face_px
    augment_regions(regions N x 128 x 128, rng) -> N x 64 x 64     # mild, fresh each call

``data_spec`` is one of:

- ``"bootstrap"`` / ``"bootstrap:val"``: the offline set ``make data`` builds
  (``build/data/bootstrap/``, see ``bootstrap.py``);
- a CelebA root (``img_align_celeba/`` + ``list_eval_partition.txt``; ``split`` picks
  train/val/test);
- a folder of images, searched recursively (``root/<person>/*.jpg`` keeps the person);
- a video file (every ``every_nth`` frame, all faces) or a single image file.

A missing path is a ``SnapsealError``; an unreadable file inside a folder is skipped with a
warning. Loaders: ``celeba.iter_celeba``, ``folder.iter_folder``, ``video.iter_video``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from snapseal.daemon.crop import DEFAULT_VARIANT
from snapseal.daemon.detect import Detector
from snapseal.daemon.errors import SnapsealError
from snapseal.quantize.data.augment import AugmentConfig, augment_regions
from snapseal.quantize.data.bootstrap import BootstrapSplit, load_bootstrap
from snapseal.quantize.data.celeba import is_celeba_root, iter_celeba
from snapseal.quantize.data.common import DEFAULT_MIN_FACE_PX, IMAGE_SUFFIXES, VIDEO_SUFFIXES, FaceSample
from snapseal.quantize.data.folder import iter_folder
from snapseal.quantize.data.video import iter_video


def iter_samples(
    data_spec: str | os.PathLike[str],
    *,
    split: str = "train",
    variant: str = DEFAULT_VARIANT,
    every_nth: int = 5,
    min_face_px: float = DEFAULT_MIN_FACE_PX,
    detector: Detector | None = None,
    progress: bool = False,
) -> Iterator[FaceSample]:
    """Faces from any supported data spec (see the module docstring)."""
    spec = str(data_spec)
    if spec in ("bootstrap", "bootstrap:train", "bootstrap:val"):
        bootstrap_split = spec.split(":")[1] if ":" in spec else split
        data = load_bootstrap(bootstrap_split)
        regions = data.regions if data.regions is not None else [None] * len(data.crops)
        for crop, region, identity, source, origin, face_px in zip(
            data.crops, regions, data.identity, data.source, data.origin, data.face_px
        ):
            yield FaceSample(crop, region, str(identity), str(source), str(origin), float(face_px))
        return
    path = Path(spec).expanduser()
    if not path.exists():
        raise SnapsealError(f"training data not found: {path} (give 'bootstrap', a CelebA root, "
                            "an image folder or a video file)")
    if path.is_dir() and is_celeba_root(path):
        yield from iter_celeba(path, split, detector=detector, variant=variant, min_face_px=min_face_px,
                               progress=progress)
    elif path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        yield from iter_folder(path, detector=detector, variant=variant, min_face_px=min_face_px,
                               progress=progress)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        yield from iter_video(path, every_nth=every_nth, detector=detector, variant=variant,
                              min_face_px=min_face_px)
    else:
        raise SnapsealError(f"not an image folder, image or video file: {path}")


def iter_crops(data_spec: str | os.PathLike[str], **options) -> Iterator[np.ndarray]:
    """64x64 uint8 crops from any supported data spec (options as ``iter_samples``)."""
    for sample in iter_samples(data_spec, **options):
        yield sample.crop


__all__ = [
    "AugmentConfig",
    "BootstrapSplit",
    "FaceSample",
    "augment_regions",
    "iter_celeba",
    "iter_crops",
    "iter_folder",
    "iter_samples",
    "iter_video",
    "load_bootstrap",
]
