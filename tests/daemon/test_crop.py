"""64x64 crops from detections: both variants, degenerate and out-of-frame boxes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import require_built

from snapseal.daemon.crop import (
    ALIGNED_EYE_CENTRE,
    CROP_VARIANTS,
    REGION_SIZE,
    crop_face,
    face_region,
    landmarks_in_crop,
    make_face_crop,
    region_to_crop,
)
from snapseal.daemon.detect import make_detector
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import CROP_SIZE, Box, Detection, Frame

ASSETS = Path(__file__).resolve().parents[2] / "build" / "assets"


@pytest.fixture(scope="module")
def group_photo() -> tuple[np.ndarray, list[Detection]]:
    path = ASSETS / "insightface" / "t1.jpg"
    require_built(path)
    image = cv2.imread(str(path))
    return image, make_detector().detect(image)


def _detection(x1, y1, x2, y2, landmarks=None) -> Detection:
    if landmarks is None:
        w, h = x2 - x1, y2 - y1
        landmarks = np.array([[x1 + 0.3 * w, y1 + 0.4 * h], [x1 + 0.7 * w, y1 + 0.4 * h], [x1 + 0.5 * w, y1 + 0.6 * h],
                              [x1 + 0.35 * w, y1 + 0.8 * h], [x1 + 0.65 * w, y1 + 0.8 * h]])
    return Detection(Box(x1, y1, x2, y2), np.asarray(landmarks, dtype=np.float32), 0.99)


@pytest.mark.parametrize("variant", CROP_VARIANTS)
def test_real_faces_give_64px_gray_crops(group_photo, variant):
    image, detections = group_photo
    for detection in detections:
        crop = crop_face(image, detection, variant)
        assert crop.shape == (CROP_SIZE, CROP_SIZE) and crop.dtype == np.uint8
        assert crop.std() > 10  # a face, not a flat patch


def test_aligned_variant_levels_the_eyes(group_photo):
    image, detections = group_photo
    for detection in detections:
        eyes = landmarks_in_crop(detection, "aligned")[:2]
        assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6
        assert np.allclose(eyes.mean(axis=0), np.array(ALIGNED_EYE_CENTRE) * CROP_SIZE)


def test_box_variant_keeps_the_box_centre_in_the_middle():
    detection = _detection(100, 50, 180, 150)
    inside = landmarks_in_crop(detection, "box")
    assert np.all((inside >= 0) & (inside <= CROP_SIZE))


def test_crop_is_the_downsampled_region(group_photo):
    image, detections = group_photo
    region = face_region(image, detections[0])
    assert region.shape == (REGION_SIZE, REGION_SIZE)
    assert np.array_equal(region_to_crop(region), crop_face(image, detections[0]))


def test_crop_reads_the_right_pixels():
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    image[40:120, 40:120] = 255  # a white square exactly the detection box
    crop = crop_face(image, _detection(40, 40, 120, 120), "box")
    # margin 0.2: the box fills the central 1/1.2 of the crop, dark around it
    assert crop[32, 32] == 255 and crop[1, 1] == 0 and crop[62, 32] == 0


@pytest.mark.parametrize("variant", CROP_VARIANTS)
@pytest.mark.parametrize(
    "box",
    [(-30, -30, 50, 50), (150, 150, 260, 260), (500, 500, 600, 600), (80, 80, 80, 80), (90, 90, 70, 60),
     (-1e6, -1e6, 1e6, 1e6)],
    ids=["top-left-out", "bottom-right-out", "outside", "empty", "negative", "huge"],
)
def test_degenerate_or_outside_boxes_never_crash(variant, box):
    image = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    crop = crop_face(image, _detection(*box), variant)
    assert crop.shape == (CROP_SIZE, CROP_SIZE) and crop.dtype == np.uint8


def test_outside_the_frame_repeats_the_border():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[:, -1] = 200  # the right-most column
    crop = crop_face(image, _detection(80, 20, 140, 80), "box")
    assert crop[32, -1] == 200  # beyond the right edge: replicated column


def test_non_finite_box_is_an_error():
    with pytest.raises(SnapsealError, match="non-finite"):
        crop_face(np.zeros((50, 50, 3), np.uint8), _detection(float("nan"), 0, 10, 10))


def test_bad_landmarks_fall_back_to_the_box_crop():
    image = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    swapped = _detection(50, 50, 150, 150, landmarks=np.array([[120, 90], [80, 90], [100, 110], [80, 130], [120, 130]]))
    assert np.array_equal(crop_face(image, swapped, "aligned"), crop_face(image, swapped, "box"))


def test_unknown_variant_and_bad_frames():
    with pytest.raises(SnapsealError, match="variant"):
        crop_face(np.zeros((50, 50, 3), np.uint8), _detection(0, 0, 10, 10), "fancy")
    with pytest.raises(SnapsealError, match="uint8"):
        crop_face(np.zeros((50, 50, 3), np.float32), _detection(0, 0, 10, 10))


def test_make_face_crop_carries_frame_data():
    image = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    detection = _detection(20, 20, 80, 90)
    face = make_face_crop(Frame(image, 12.5, 7), detection)
    assert face.pixels.shape == (CROP_SIZE, CROP_SIZE) and face.frame_index == 7 and face.timestamp == 12.5
    assert face.detection is detection


# --- evidence images: the investigator's colour cut beside the model crop ---------------------

from snapseal.daemon.crop import (  # noqa: E402
    EvidenceSettings,
    cut_evidence,
    evidence_box,
    evidence_images,
    face_box_in_evidence,
)


def _frame(height=480, width=640, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_evidence_is_the_frame_itself_in_colour_around_the_face():
    image = _frame()
    detection = _detection(200, 150, 260, 220)
    (evidence,) = evidence_images(image, detection)
    x1, y1, x2, y2 = evidence.frame_box
    assert evidence.role == "evidence" and not evidence.padded and evidence.scale == 1.0
    assert evidence.pixels.dtype == np.uint8 and evidence.pixels.shape == (y2 - y1, x2 - x1, 3)
    assert np.array_equal(evidence.pixels, image[y1:y2, x1:x2])  # lossless, camera resolution
    box = detection.box
    assert x1 < box.x1 and y1 < box.y1 and x2 > box.x2 and y2 > box.y2  # context on every side
    assert (box.y1 - y1) > (y2 - box.y2)  # more room above (hair) than below


def test_evidence_is_capped_and_never_upscaled():
    image = _frame(1080, 1920)
    big = _detection(700, 300, 1100, 780)
    (evidence,) = evidence_images(image, big, EvidenceSettings(max_side=200))
    assert max(evidence.pixels.shape[:2]) <= 200 and evidence.scale < 1.0
    tiny = _detection(900, 500, 920, 522)
    (evidence,) = evidence_images(image, tiny, EvidenceSettings(max_side=200))
    assert evidence.scale == 1.0 and max(evidence.pixels.shape[:2]) < 200


@pytest.mark.parametrize("box", [(-40, -30, 40, 50), (600, 430, 700, 540), (-5000, 100, 5000, 200),
                                 (2000, 2000, 2100, 2100), (0, 0, 0, 0)])
def test_evidence_leaving_the_frame_is_padded_and_marked(box):
    image = _frame()
    (evidence,) = evidence_images(image, _detection(*box))
    assert evidence.padded
    assert evidence.pixels.ndim == 3 and evidence.pixels.shape[2] == 3
    assert max(evidence.pixels.shape[:2]) <= EvidenceSettings().max_side


def test_padding_is_black_and_the_inside_is_the_frame():
    image = np.full((100, 100, 3), 200, np.uint8)
    evidence = cut_evidence(image, (-20.0, -10.0, 80.0, 90.0), max_side=500)
    assert evidence.padded and evidence.frame_box == (-20, -10, 80, 90)
    assert (evidence.pixels[:10] == 0).all() and (evidence.pixels[:, :20] == 0).all()
    assert (evidence.pixels[10:, 20:] == 200).all()


def test_person_region_is_optional_and_inside_the_frame():
    image = _frame()
    detection = _detection(300, 50, 340, 100)
    assert [e.role for e in evidence_images(image, detection)] == ["evidence"]
    images = evidence_images(image, detection, EvidenceSettings(person_region=True))
    assert [e.role for e in images] == ["evidence", "person"]
    person = images[1]
    assert not person.padded and person.frame_box[3] <= image.shape[0]
    assert person.pixels.shape[0] > images[0].pixels.shape[0]  # the body below the face


def test_gray_frames_give_colour_evidence_and_the_face_box_maps_into_it():
    gray = _frame()[:, :, 0].copy()
    detection = _detection(100, 100, 160, 170)
    (evidence,) = evidence_images(gray, detection)
    assert evidence.pixels.shape[2] == 3
    x1, y1, x2, y2 = face_box_in_evidence(evidence, detection)
    assert 0 < x1 < x2 < evidence.pixels.shape[1] and 0 < y1 < y2 < evidence.pixels.shape[0]


@pytest.mark.parametrize("key,kwargs", [("evidence.max_side", {"max_side": CROP_SIZE - 1}),
                                        ("evidence.person_max_side", {"person_max_side": 10}),
                                        ("evidence.context", {"context": 0.5})])
def test_a_cap_smaller_than_the_model_crop_is_a_config_error_naming_the_key(key, kwargs):
    with pytest.raises(SnapsealError, match=key.replace(".", r"\.")):
        EvidenceSettings(**kwargs)


def test_make_face_crop_carries_the_evidence_of_the_same_frame():
    image = _frame()
    detection = _detection(200, 150, 260, 220)
    crop = make_face_crop(Frame(image, 1.0, 7), detection)
    assert crop.pixels.shape == (CROP_SIZE, CROP_SIZE) and [e.role for e in crop.evidence] == ["evidence"]
    assert make_face_crop(Frame(image, 1.0, 7), detection, evidence=None).evidence == ()
    assert evidence_box(detection)[0] < detection.box.x1


def test_non_finite_boxes_are_an_error_not_a_crash():
    with pytest.raises(SnapsealError):
        evidence_images(_frame(), _detection(float("nan"), 0, 10, 10))
