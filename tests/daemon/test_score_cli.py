"""`snapseal score` end to end: real photos from build/assets, a non-image, a uniform crop."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import require_built

from snapseal.daemon.cli import main
from snapseal.daemon.scoring.inputs import UNIFORM_SCORE

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "build" / "assets"
PHOTOS = [ASSETS / "facedetect" / "grace_hopper_512x512.jpg", ASSETS / "scikit-image" / "astronaut.png"]


def _run(capsys, *argv: str) -> tuple[int, list[dict]]:
    code = main(["score", *argv])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
def photos() -> list[Path]:
    for path in PHOTOS:
        require_built(path)
    return PHOTOS


def test_scores_the_largest_face_of_each_photo_and_reports_bad_files(photos, tmp_path, capsys):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not a JPEG\n")
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 90, np.uint8))  # no face in it
    code, lines = _run(capsys, str(photos[0]), str(not_an_image), str(blank), str(photos[1]))
    assert code == 1  # some lines hold errors
    assert [line["path"] for line in lines] == [str(photos[0]), str(not_an_image), str(blank), str(photos[1])]
    for line in (lines[0], lines[3]):
        assert isinstance(line["score"], float) and "error" not in line
        assert line["scorer"] == "complexity" and line["model_id"]
        x1, y1, x2, y2 = line["box"]
        assert 0 <= x1 < x2 and 0 <= y1 < y2 and line["confidence"] > 0.9
        assert set(line["components"]) >= {"loglik_bits", "png_bits", "noise_bits", "exposure_bits"}
    assert "not a readable image" in lines[1]["error"] and "score" not in lines[1]
    assert "no face" in lines[2]["error"]


def test_largest_face_is_chosen(photos, capsys):
    from snapseal.daemon.detect import make_detector

    image = cv2.imread(str(ASSETS / "insightface" / "t1.jpg"))
    if image is None:
        pytest.skip("insightface t1.jpg not fetched")
    detections = make_detector(min_face_px=20, confidence=0.9).detect(image)
    largest = max(detections, key=lambda d: d.box.area)
    _, lines = _run(capsys, str(ASSETS / "insightface" / "t1.jpg"))
    assert len(detections) > 1
    assert lines[0]["box"] == pytest.approx(largest.box.as_list(), abs=0.1)


def test_crop_mode_scores_whole_images_and_flags_uniform_crops(photos, tmp_path, capsys):
    face = cv2.imread(str(photos[0]))[100:310, 175:355]
    face_path, flat_path = tmp_path / "face.png", tmp_path / "flat.png"
    cv2.imwrite(str(face_path), face)
    cv2.imwrite(str(flat_path), np.full((64, 64), 200, np.uint8))
    code, lines = _run(capsys, "--crop", str(face_path), str(flat_path))
    assert code == 0
    assert lines[0]["box"] is None and lines[0]["score"] > UNIFORM_SCORE
    assert lines[1]["score"] == UNIFORM_SCORE and lines[1]["components"]["uniform"] == 1.0


def test_paper_scorer_by_name_and_same_answer_twice(photos, capsys):
    _, first = _run(capsys, "--scorer", "paper", str(photos[0]))
    _, again = _run(capsys, "--scorer", "paper", str(photos[0]))
    assert first[0]["scorer"] == "paper" and "log_rp" in first[0]["components"]
    assert first == again


def test_fatal_problems_exit_2_with_one_line(tmp_path, capsys, photos):
    assert main(["score", "--bundle", str(tmp_path / "nowhere"), str(photos[0])]) == 2
    assert main(["score", "--scorer", "sharpest", str(photos[0])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("snapseal: error: ") for line in err)


def test_without_onnxruntime_photos_are_scored_with_opencv_dnn(photos, capsys, monkeypatch):
    """A PYNQ-Z2 has no onnxruntime: `snapseal score` falls back to OpenCV DNN for the detector."""
    from snapseal.daemon.detect import runtimes

    monkeypatch.setattr(runtimes, "available_runtimes", lambda: ["opencv", "ncnn"])
    code, lines = _run(capsys, str(photos[0]))
    assert code == 0 and isinstance(lines[0]["score"], float), lines
