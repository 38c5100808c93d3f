"""MTCNN on real photos from the bootstrap assets (built by `make data`, a prerequisite of
`make test`). Runs in both environments (board: Python 3.10 + numpy 1.x)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import require_built

from snapseal.daemon.detect import Detector, make_detector
from snapseal.daemon.detect.mtcnn import BACKENDS, MtcnnDetector, find_weights_dir, nms
from snapseal.daemon.errors import SnapsealError

ASSETS = Path(__file__).resolve().parents[2] / "build" / "assets"


def _asset(relative: str) -> np.ndarray:
    path = ASSETS / relative
    require_built(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture(scope="module", params=[b for b in BACKENDS if b != "ncnn"])  # ncnn: test_detect_runtimes.py
def detector(request) -> MtcnnDetector:
    return MtcnnDetector(min_face_px=40, confidence=0.9, backend=request.param)


def test_factory_returns_a_detector():
    assert isinstance(make_detector(), Detector)


def test_six_faces_in_group_photo_with_landmarks_inside(detector):
    detections = detector.detect(_asset("insightface/t1.jpg"))
    assert len(detections) == 6
    confidences = [d.confidence for d in detections]
    assert confidences == sorted(confidences, reverse=True)
    for detection in detections:
        box, points = detection.box, detection.landmarks
        assert points.shape == (5, 2)
        assert detection.confidence >= 0.9
        assert np.all((points[:, 0] >= box.x1) & (points[:, 0] <= box.x2))
        assert np.all((points[:, 1] >= box.y1) & (points[:, 1] <= box.y2))
        left_eye, right_eye, nose, mouth_left, mouth_right = points
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < min(mouth_left[1], mouth_right[1])


def test_one_face_in_portrait(detector):
    image = _asset("facedetect/grace_hopper_512x512.jpg")
    detections = detector.detect(image)
    assert len(detections) == 1
    box = detections[0].box
    assert 0 <= box.x1 < box.x2 <= image.shape[1] and 0 <= box.y1 < box.y2 <= image.shape[0]


def test_gray_input_finds_the_same_face(detector):
    image = _asset("facedetect/grace_hopper_512x512.jpg")
    assert len(detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))) == 1


@pytest.mark.parametrize("shape", [(480, 640, 3), (8, 8, 3), (1, 1, 3)])
def test_nothing_in_blank_images(detector, shape):
    assert detector.detect(np.full(shape, 128, dtype=np.uint8)) == []


def test_min_face_px_hides_small_faces():
    image = _asset("insightface/t1.jpg")  # faces ~90-120 px wide
    assert make_detector(min_face_px=200).detect(image) == []


def test_backends_agree():
    image = _asset("insightface/t1.jpg")
    by_backend = [sorted(MtcnnDetector(backend=b).detect(image), key=lambda d: d.box.x1) for b in ("onnxruntime", "opencv")]
    assert len(by_backend[0]) == len(by_backend[1])
    for a, b in zip(*by_backend):
        assert np.allclose(a.box.as_list(), b.box.as_list(), atol=1.0)
        assert np.allclose(a.landmarks, b.landmarks, atol=1.0)


def test_missing_weights_name_the_file(tmp_path):
    (tmp_path / "pnet.onnx").write_bytes(b"")
    with pytest.raises(SnapsealError, match="rnet.onnx"):
        find_weights_dir(tmp_path)


def test_corrupt_weights_are_a_clean_error(tmp_path):
    for name in ("pnet.onnx", "rnet.onnx", "onet.onnx"):
        (tmp_path / name).write_bytes(b"not an onnx file")
    with pytest.raises(SnapsealError, match="pnet.onnx"):
        MtcnnDetector(weights_dir=tmp_path)


def test_bad_settings_and_inputs():
    with pytest.raises(SnapsealError, match="backend"):
        MtcnnDetector(backend="tensorflow")
    with pytest.raises(SnapsealError, match="min_face_px"):
        MtcnnDetector(min_face_px=5)
    with pytest.raises(SnapsealError, match="uint8"):
        make_detector().detect(np.zeros((10, 10, 3), dtype=np.float32))


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=float)
    scores = np.array([0.8, 0.9, 0.7])
    assert list(nms(boxes, scores, 0.5)) == [1, 2]
    assert list(nms(boxes, scores, 0.99)) == [1, 0, 2]
