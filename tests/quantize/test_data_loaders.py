"""Loaders on small temp folders laid out like CelebA / an image folder / a video file, and the
bootstrap set's split (built by `make data`, a prerequisite of `make test`)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import require_built

from snapseal.daemon.crop import region_to_crop
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import CROP_SIZE
from snapseal.quantize.data import augment_regions, iter_crops, iter_samples, load_bootstrap
from snapseal.quantize.data.bootstrap import SOURCES, detection_from_arrays
from snapseal.quantize.data.celeba import iter_celeba

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "build" / "assets"
BOOTSTRAP = REPO / "build" / "data" / "bootstrap"


def _need(path: Path) -> Path:
    if not path.exists():
        require_built(path)
    return path


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return cv2.imread(str(_need(ASSETS / "facedetect" / "grace_hopper_512x512.jpg")))


@pytest.fixture(scope="module")
def people() -> list[np.ndarray]:
    """Six single-face photos cut from the group photo (one person each)."""
    image = cv2.imread(str(_need(ASSETS / "insightface" / "t1.jpg")))
    from snapseal.daemon.detect import make_detector

    photos = []
    for detection in make_detector().detect(image):
        cx, cy = detection.box.center
        half = int(max(detection.box.width, detection.box.height))
        y1, x1 = max(0, int(cy) - half), max(0, int(cx) - half)
        photos.append(np.ascontiguousarray(image[y1 : int(cy) + half, x1 : int(cx) + half]))
    return photos


def test_celeba_layout_and_partitions(tmp_path, people):
    (tmp_path / "img_align_celeba").mkdir()
    lines = []
    for index, photo in enumerate(people, 1):
        name = f"{index:06d}.jpg"
        cv2.imwrite(str(tmp_path / "img_align_celeba" / name), photo)
        lines.append(f"{name} {0 if index <= 4 else 1}")
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    train = list(iter_celeba(tmp_path, "train"))
    val = list(iter_celeba(tmp_path, "val"))
    assert len(train) == 4 and len(val) == 2
    assert all(s.crop.shape == (CROP_SIZE, CROP_SIZE) and s.crop.dtype == np.uint8 for s in train + val)
    assert len(list(iter_crops(tmp_path, split="val"))) == 2  # the spec dispatcher sees CelebA
    assert list(iter_celeba(tmp_path, "test")) == []
    with pytest.raises(SnapsealError, match="split"):
        list(iter_celeba(tmp_path, "holdout"))


def test_celeba_missing_partition_file(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(SnapsealError, match="list_eval_partition.txt"):
        list(iter_celeba(tmp_path))


def test_identity_folder_keeps_person_and_skips_non_images(tmp_path, people, portrait, caplog):
    for person, photo in (("alice", people[0]), ("alice", people[0][:, ::-1]), ("bob", people[1])):
        (tmp_path / person).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / person / f"{len(list((tmp_path / person).iterdir()))}.jpg"), photo)
    cv2.imwrite(str(tmp_path / "loose.png"), portrait)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "bob" / "broken.jpg").write_bytes(b"this is no jpeg")
    with caplog.at_level(logging.WARNING, logger="snapseal.quantize.data"):
        samples = list(iter_samples(tmp_path))
    assert sorted(s.identity for s in samples) == ["alice", "alice", "bob", "loose"]
    assert all(s.region.shape == (2 * CROP_SIZE, 2 * CROP_SIZE) for s in samples)
    assert "broken.jpg" in caplog.text and "notes.txt" in caplog.text


def test_video_file_every_nth_frame(tmp_path, portrait):
    path = tmp_path / "clip.avi"
    frame = cv2.resize(portrait, (320, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    assert writer.isOpened()
    for shift in range(9):
        writer.write(np.roll(frame, 3 * shift, axis=1))
    writer.release()
    samples = list(iter_samples(path, every_nth=4))
    assert [s.origin.split("@")[1].split("#")[0] for s in samples] == ["0", "4", "8"]
    assert {s.identity for s in samples} == {"clip"}


def test_missing_and_unsupported_paths(tmp_path):
    with pytest.raises(SnapsealError, match="not found"):
        list(iter_crops(tmp_path / "nowhere"))
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(SnapsealError, match="weights.bin"):
        list(iter_crops(tmp_path / "weights.bin"))
    (tmp_path / "broken.mp4").write_bytes(b"no video")
    with pytest.raises(SnapsealError, match="broken.mp4"):
        list(iter_crops(tmp_path / "broken.mp4"))


def test_bootstrap_split_is_identity_disjoint():
    _need(BOOTSTRAP / "train.npz")
    train, val = load_bootstrap("train"), load_bootstrap("val")
    assert train.crops.ndim == 3 and train.crops.shape[1:] == (CROP_SIZE, CROP_SIZE)
    assert train.crops.dtype == np.uint8 and val.crops.dtype == np.uint8
    assert len(val.crops) >= 5 and len(train.crops) > len(val.crops)
    assert not set(train.identity) & set(val.identity)
    assert not set(train.source) & set(val.source)
    assert {s.name for s in SOURCES if s.split == "val"} == set(val.source)
    assert len(load_bootstrap("train", min_face_px=53).crops) < len(train.crops)  # lfw_subset goes
    assert sum(1 for _ in iter_crops("bootstrap:val")) == len(val.crops)


def test_val_sources_recreate_the_val_crops():
    _need(BOOTSTRAP / "val_sources.npz")
    val = load_bootstrap("val")
    with np.load(BOOTSTRAP / "val_sources.npz") as sources:
        regions = sources["regions"]
        assert len(regions) == len(val.crops)
        for region, crop in zip(regions, val.crops):
            assert np.array_equal(region_to_crop(region), crop)
        from snapseal.daemon.crop import crop_face

        first = str(sources["frame_path"][0])
        frame = cv2.imread(str(ASSETS / first))
        detection = detection_from_arrays(sources["boxes"][0], sources["landmarks"][0])
        assert np.array_equal(crop_face(frame, detection, str(sources["variant"])), val.crops[0])


def test_augmentation_is_mild_and_seeded():
    _need(BOOTSTRAP / "train.npz")
    train = load_bootstrap("train", min_face_px=53)
    regions = train.regions[:16]
    first = augment_regions(regions, np.random.default_rng(5))
    again = augment_regions(regions, np.random.default_rng(5))
    other = augment_regions(regions, np.random.default_rng(6))
    assert first.shape == (16, CROP_SIZE, CROP_SIZE) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    # Mild: an augmented crop stays as sharp as the original (no blur augmentation).
    def sharpness(crops):
        return np.mean([cv2.Laplacian(c, cv2.CV_64F).var() for c in crops])
    assert sharpness(first) > 0.6 * sharpness(train.crops[:16])
