"""The detection schedule: full detection every k-th frame, O-Net alone on the tracker's
predictions in between; and the tracker's predictions it uses."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.conftest import require_built

from snapseal.daemon.detect import make_detector
from snapseal.daemon.detect.schedule import DetectionSchedule
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.dedupe import NearDuplicateFilter
from snapseal.daemon.track import DistanceTracker, IouTracker
from snapseal.daemon.types import Box, Detection

ASSETS = Path(__file__).resolve().parents[2] / "build" / "assets"


def _face(x: float, y: float, size: float = 50.0, confidence: float = 0.99) -> Detection:
    return Detection(Box(x, y, x + size, y + size), np.zeros((5, 2), np.float32), confidence)


class FakeDetector:
    """Counts full passes and box passes; finds a face in every box it is given, or not."""

    name = "fake"

    def __init__(self, faces: list[Detection], confirm: bool = True) -> None:
        self.faces, self.confirm = faces, confirm
        self.full_calls, self.box_calls, self.shapes = 0, [], []

    def detect(self, image_bgr):
        self.full_calls += 1
        self.shapes.append(image_bgr.shape)
        return list(self.faces)

    def detect_in_boxes(self, image_bgr, boxes):
        self.box_calls.append(np.asarray(boxes).copy())
        if not self.confirm:
            return []
        return [Detection(Box(*b), np.zeros((5, 2), np.float32), 0.95) for b in np.asarray(boxes)]


FRAME = np.zeros((120, 160, 3), np.uint8)


def test_every_frame_is_a_full_detection_by_default():
    detector = FakeDetector([_face(10, 10)])
    schedule = DetectionSchedule(detector)
    for index in range(6):
        schedule.detect(FRAME, index, lambda i: pytest.fail("k = 1 must not ask for predictions"))
    assert detector.full_calls == 6 and detector.box_calls == []
    assert schedule.name == "fake"


def test_full_every_k_frames_and_predicted_boxes_between():
    detector = FakeDetector([_face(10, 10)])
    schedule = DetectionSchedule(detector, full_every=3)
    predicted = np.array([[11.0, 12.0, 61.0, 62.0]])
    asked = []
    for index in range(7):
        detections = schedule.detect(FRAME, index, lambda i: asked.append(i) or predicted)
        assert len(detections) == 1
    assert detector.full_calls == 3  # frames 0, 3, 6
    assert asked == [1, 2, 4, 5]
    assert all(np.array_equal(b, predicted) for b in detector.box_calls)
    assert schedule.stats.as_dict() == {"full": 3, "refined": 4, "refined_boxes": 4, "lost": 0, "crowded": 0,
                                       "windows": 0, "young": 0}


def test_a_lost_face_gets_a_full_pass_on_the_same_frame_when_asked():
    detector = FakeDetector([_face(10, 10)], confirm=False)
    schedule = DetectionSchedule(detector, full_every=10, window=0, full_on_loss=True)
    predicted = np.array([[10.0, 10.0, 60.0, 60.0]])
    for index in range(4):
        assert len(schedule.detect(FRAME, index, lambda i: predicted)) == 1  # the full pass's face
    # 0 full; 1, 2, 3: O-Net loses the face, so the same frame gets a full pass
    assert detector.full_calls == 4 and len(detector.box_calls) == 3 and schedule.stats.lost == 3


def _frame_with_face_at(detector, schedule, frame, box):
    """Frame 0: a full pass that finds a face at ``box`` (so it counts as recently seen)."""
    detector.faces = [Detection(Box(*box), np.zeros((5, 2), np.float32), 0.99)]
    schedule.detect(frame, 0, lambda i: np.array([box]))


def test_a_lost_face_is_searched_for_in_a_window_around_its_prediction():
    frame = np.zeros((480, 640, 3), np.uint8)
    detector = FakeDetector([], confirm=False)
    schedule = DetectionSchedule(detector, full_every=10, window=2.0)
    predicted = np.array([[300.0, 200.0, 340.0, 240.0]])  # a 40 px face
    _frame_with_face_at(detector, schedule, frame, predicted[0])
    detector.faces = [_face(25, 22, size=40)]  # what the window pass finds, at (25, 22) inside it
    found = schedule.detect(frame, 1, lambda i: predicted)
    assert detector.shapes[-1][:2] == (80, 80)  # 2 box sides around the prediction, not the frame
    assert [d.box.as_list() for d in found] == [[305.0, 202.0, 345.0, 242.0]]  # window origin (280, 180)
    assert schedule.stats.lost == 1 and schedule.stats.windows == 1 and schedule.stats.full == 1


def test_a_face_the_window_misses_waits_or_gets_a_full_pass():
    frame = np.zeros((480, 640, 3), np.uint8)
    predicted = np.array([[300.0, 200.0, 340.0, 240.0]])
    for full_on_loss, shapes in ((False, [(480, 640), (80, 80)]), (True, [(480, 640), (80, 80), (480, 640)])):
        detector = FakeDetector([], confirm=False)
        schedule = DetectionSchedule(detector, full_every=10, window=2.0, full_on_loss=full_on_loss)
        _frame_with_face_at(detector, schedule, frame, predicted[0])
        detector.faces = [_face(0, 0, size=20)]  # the window finds something else
        schedule.detect(frame, 1, lambda i: predicted)
        assert [shape[:2] for shape in detector.shapes] == shapes


def test_a_face_unseen_for_a_while_is_not_searched_for_again_and_again():
    frame = np.zeros((480, 640, 3), np.uint8)
    predicted = np.array([[300.0, 200.0, 340.0, 240.0]])
    detector = FakeDetector([], confirm=False)
    schedule = DetectionSchedule(detector, full_every=100, window=2.0, search_recent=2)
    _frame_with_face_at(detector, schedule, frame, predicted[0])
    detector.faces = []
    for index in range(1, 8):
        schedule.detect(frame, index, lambda i: predicted)
    assert schedule.stats.windows == 2 and schedule.stats.lost == 7  # frames 1 and 2 only


def test_window_detections_do_not_duplicate_confirmed_faces():
    class HalfConfirming(FakeDetector):
        def detect_in_boxes(self, image_bgr, boxes):
            self.box_calls.append(boxes)
            return [Detection(Box(*boxes[0]), np.zeros((5, 2), np.float32), 0.95)]  # only the first face

    frame = np.zeros((480, 640, 3), np.uint8)
    predicted = np.array([[100.0, 100.0, 160.0, 160.0], [400.0, 100.0, 460.0, 160.0]])
    detector = HalfConfirming([Detection(Box(*b), np.zeros((5, 2), np.float32), 0.99) for b in predicted])
    schedule = DetectionSchedule(detector, full_every=10, window=2.0)
    schedule.detect(frame, 0, lambda i: predicted)
    detector.faces = [_face(30, 30, size=60)]  # the window pass finds the lost face
    found = schedule.detect(frame, 1, lambda i: predicted)
    assert len(found) == 2 and schedule.stats.lost == 1 and schedule.stats.windows == 1


def test_a_face_walking_out_of_the_frame_is_not_searched_for():
    frame = np.zeros((480, 640, 3), np.uint8)
    detector = FakeDetector([], confirm=False)
    schedule = DetectionSchedule(detector, full_every=10, window=2.0)
    leaving = np.array([[620.0, 200.0, 680.0, 260.0]])  # two thirds of it past the right edge
    schedule.detect(frame, 0, lambda i: leaving)
    assert schedule.detect(frame, 1, lambda i: leaving) == []
    assert schedule.stats.lost == 1 and schedule.stats.windows == 0 and schedule.stats.full == 1


def test_touching_predictions_get_a_full_pass():
    detector = FakeDetector([_face(10, 10), _face(55, 10)])
    schedule = DetectionSchedule(detector, full_every=10)
    crossing = np.array([[10.0, 10.0, 60.0, 60.0], [55.0, 10.0, 105.0, 60.0]])
    apart = np.array([[10.0, 10.0, 60.0, 60.0], [80.0, 10.0, 130.0, 60.0]])
    schedule.detect(FRAME, 0, lambda i: apart)
    schedule.detect(FRAME, 1, lambda i: crossing)
    schedule.detect(FRAME, 2, lambda i: apart)
    assert detector.full_calls == 2 and len(detector.box_calls) == 1 and schedule.stats.crowded == 1


def test_nothing_to_follow_costs_nothing_until_the_next_full_pass():
    detector = FakeDetector([])
    schedule = DetectionSchedule(detector, full_every=4)
    for index in range(8):
        assert schedule.detect(FRAME, index, lambda i: np.zeros((0, 4))) == []
    assert detector.full_calls == 2 and detector.box_calls == []


def test_bad_settings_are_one_line():
    with pytest.raises(SnapsealError, match="full_every"):
        DetectionSchedule(FakeDetector([]), full_every=0)

    class FullOnly:
        name = "full-only"

        def detect(self, image_bgr):
            return []

    with pytest.raises(SnapsealError, match="full-only"):
        DetectionSchedule(FullOnly(), full_every=3)
    assert DetectionSchedule(FullOnly(), full_every=1).detect(FRAME, 0) == []


def _walk(frames: int) -> list[list[Detection]]:
    """Two faces walking in opposite directions, one vanishing for a while."""
    out = []
    for i in range(frames):
        faces = [_face(10 + 4 * i, 20)]
        if not 8 <= i < 11:
            faces.append(_face(300 - 5 * i, 120, size=40))
        out.append(faces)
    return out


@pytest.mark.parametrize("tracker_class", [IouTracker, DistanceTracker])
def test_asking_for_predictions_changes_no_matching(tracker_class):
    plain, asked = tracker_class(), tracker_class()
    for index, faces in enumerate(_walk(20)):
        predicted = asked.predicted_boxes(index, 3)
        assert predicted.shape[1] == 4
        assert plain.update(faces, index).track_ids == asked.update(faces, index).track_ids


def test_iou_tracker_predicts_the_motion_and_forgets_stale_tracks():
    tracker = IouTracker()
    for index in range(6):
        tracker.update([_face(10 + 4 * index, 20)], index)
    predicted = tracker.predicted_boxes(6, seen_within=3)
    assert len(predicted) == 1
    assert predicted[0, 0] > 10 + 4 * 5  # moved on with the face
    assert len(tracker.predicted_boxes(20, seen_within=3)) == 0  # last seen at frame 5
    rows = tracker.predicted_tracks(7, seen_within=3)  # prediction, last matched box, frames since
    assert rows.shape == (1, 10)
    assert np.array_equal(rows[0, 4:8], [30.0, 20.0, 80.0, 70.0]) and rows[0, 8] == 2 and rows[0, 9] == 6
    assert np.array_equal(rows[:, :4], tracker.predicted_boxes(7, seen_within=3))


def test_distance_tracker_predicts_the_last_box():
    tracker = DistanceTracker()
    tracker.update([_face(10, 20)], 0)
    rows = tracker.predicted_tracks(2, seen_within=5)
    assert rows.tolist() == [[10.0, 20.0, 60.0, 70.0, 10.0, 20.0, 60.0, 70.0, 2.0, 1.0]]


def test_a_young_track_gets_full_passes_until_it_is_established():
    detector = FakeDetector([_face(10, 10)])
    schedule = DetectionSchedule(detector, full_every=10, young_hits=3)
    for index, hits in enumerate([1, 1, 2, 3, 4]):
        row = np.array([[10.0, 10.0, 60.0, 60.0, 10.0, 10.0, 60.0, 60.0, 0.0, hits]])
        schedule.detect(FRAME, index, lambda i, row=row: row)
    # frame 0 is full anyway; 1 and 2 (hits 1, 2 < 3) full; 3 and 4 O-Net alone
    assert detector.full_calls == 3 and len(detector.box_calls) == 2 and schedule.stats.young == 2


def test_schedule_on_a_real_photo_keeps_the_faces():
    path = ASSETS / "insightface" / "t1.jpg"
    require_built(path)
    image = cv2.imread(str(path))
    detector = make_detector()
    schedule = DetectionSchedule(detector, full_every=4)
    tracker = IouTracker()
    counts = []
    for index in range(8):  # a still camera: the same frame again and again
        detections = schedule.detect(image, index, lambda i: tracker.predicted_boxes(i, 4))
        step = tracker.update(detections, index)
        counts.append(len(detections))
        assert len(set(step.track_ids)) == len(detections)
    assert counts == [6] * 8
    assert schedule.stats.full == 2 and schedule.stats.refined == 6
    assert len(tracker.open_tracks()) == 6  # one track per face, none split


def test_near_duplicate_crops_are_not_scored_again():
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    dedupe = NearDuplicateFilter(2.0)
    assert dedupe.keep(1, crop)
    assert not dedupe.keep(1, crop)  # identical
    nudged = np.clip(crop.astype(np.int16) + 1, 0, 255).astype(np.uint8)
    assert not dedupe.keep(1, nudged)  # < 2 grey levels on average
    assert dedupe.keep(2, crop)  # another track
    other = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    assert dedupe.keep(1, other)
    dedupe.end_track(1)
    assert dedupe.keep(1, other)  # a new track with a recycled id starts afresh
    assert NearDuplicateFilter(0.0).keep(1, crop) and NearDuplicateFilter(0.0).keep(1, crop)
    assert dedupe.kept == 4 and dedupe.skipped == 2
    with pytest.raises(ValueError):
        NearDuplicateFilter(-1)


def test_drift_is_scored_once_it_adds_up():
    dedupe = NearDuplicateFilter(2.0)
    base = np.full((64, 64), 100, np.uint8)
    kept = [dedupe.keep(1, base + step) for step in range(6)]  # +1 grey level per frame
    assert kept == [True, False, True, False, True, False]  # compared with the last KEPT crop


def test_the_daemon_with_a_schedule_keeps_one_record_per_person(tmp_path):
    """The whole daemon (service.build_pipeline) on a walk-by of real faces with MTCNN: a full
    detection every 4th frame and near-duplicate skipping give every person exactly one record,
    as full detection on every frame does, with fewer full passes than frames."""
    require_built(ASSETS / "insightface" / "t1.jpg")
    from snapseal.daemon.config import load_config
    from snapseal.daemon.keys import InvestigatorKeyPair, save_investigator_keys
    from snapseal.daemon.service import build_pipeline
    from snapseal.eval.scenes.assets import load_face_patches
    from snapseal.eval.scenes.walkby import plan_walkby, write_video

    people = 3
    patches = load_face_patches(make_detector(), ASSETS)[:people]
    plan = plan_walkby(320, 240, n_people=people, frames_per_person=50, n_patches=len(patches), seed=5)
    video = write_video(plan, patches, tmp_path / "walkby.avi")
    pub, _ = save_investigator_keys(InvestigatorKeyPair.generate(), tmp_path / "keys")

    class Sharpness:
        name, model_id = "sharpness", "test-sharpness"

        def score_batch(self, crops):
            return np.abs(np.diff(crops.astype(np.float64), axis=1)).mean(axis=(1, 2))

    results = {}
    for k, skip in ((1, 0.0), (4, 2.0)):
        config = load_config(None, {"camera.source": str(video), "store.dir": str(tmp_path / f"store-{k}"),
                                    "keys.recipient": str(pub), "detector.min_face_px": 24,
                                    "detector.full_every": k, "quality.skip_near_duplicates": skip})
        built = build_pipeline(config, ephemeral_device_key=True, scorer=Sharpness())
        summary = built.pipeline.run()
        results[k] = (summary, built.pipeline.schedule.stats)
    for k, (summary, _stats) in results.items():
        assert summary.records_written == people == len(summary.sealed_tracks()), k
    summary, stats = results[4]
    assert stats.full < summary.frames and stats.refined > 0
