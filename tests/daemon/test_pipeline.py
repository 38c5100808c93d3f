"""The whole pipeline on generated walk-by videos: one record per person, nothing in the clear."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import ASSETS_DIR

from snapseal.daemon.capture import open_source
from snapseal.daemon.config import load_config
from snapseal.eval.scenes.walkby import TruthDetector, plan_walkby, synthetic_face_patch, write_video
from snapseal.daemon.keys import InvestigatorKeyPair, load_investigator_private, save_investigator_keys
from snapseal.investigator.open import open_record
from snapseal.daemon.logs import configure_logging
from snapseal.daemon.service import build_pipeline
from snapseal.daemon.records.store import list_headers
from snapseal.daemon.scoring.chooser import make_ranker

N_PEOPLE = 3


class SharpnessScorer:
    """Test double: gradient energy (prefers sharp, bright, unsqueezed faces)."""

    name = "sharpness"
    model_id = "test-sharpness"

    def score_batch(self, crops: np.ndarray) -> np.ndarray:
        crops = crops.astype(np.float64)
        return np.abs(np.diff(crops, axis=1)).mean(axis=(1, 2)) + np.abs(np.diff(crops, axis=2)).mean(axis=(1, 2))


@pytest.fixture(scope="module")
def walkby(tmp_path_factory):
    plan = plan_walkby(320, 240, n_people=N_PEOPLE, frames_per_person=60, seed=3)
    patches = [synthetic_face_patch(seed=i) for i in range(N_PEOPLE)]
    path = write_video(plan, patches, tmp_path_factory.mktemp("video") / "walkby.avi")
    return plan, path


@pytest.fixture
def keys(tmp_path):
    pub, key = save_investigator_keys(InvestigatorKeyPair.generate(), tmp_path / "keys")
    return pub, key


def run_pipeline(walkby, keys, tmp_path, **overrides):
    plan, video = walkby
    config = load_config(None, {"camera.source": str(video), "store.dir": str(tmp_path / "store"),
                                "keys.recipient": str(keys[0]), **overrides})
    scored: list = []
    built = build_pipeline(config, ephemeral_device_key=True, detector=TruthDetector(plan), scorer=SharpnessScorer(),
                           on_scored=lambda track_id, s: scored.append((track_id, s)))
    # these tests check what is kept against the scores: rank by the score alone (the default
    # ranker, which adds pose terms, is checked in tests/daemon/test_choose.py)
    built.pipeline.chooser.ranker = make_ranker("score")
    summary = built.pipeline.run()
    return plan, summary, scored


def open_all(store: Path, key_path: Path):
    key = load_investigator_private(key_path)
    return [open_record(h.path.read_bytes(), key) for h in list_headers(store)]


def test_every_person_yields_exactly_one_record(walkby, keys, tmp_path):
    plan, summary, scored = run_pipeline(walkby, keys, tmp_path)
    assert summary.frames == plan.n_frames
    assert len(summary.sealed_tracks()) == N_PEOPLE == summary.records_written
    records = open_all(tmp_path / "store", keys[1])
    assert len(records) == N_PEOPLE
    # Each record's crop is the best-scoring crop of its track, and its box lies on one person.
    truth = {(t.frame_index, t.person_id): t.box for t in plan.truth}
    people = set()
    for record in records:
        track_scores = [s.score for track_id, s in scored if track_id == record.meta.track_id]
        assert record.meta.score == pytest.approx(max(track_scores))
        assert record.meta.model_id == "test-sharpness"
        assert [i.role for i in record.images] == ["best", "evidence"]  # the model crop and the colour evidence
        best = next(s for track_id, s in scored if track_id == record.meta.track_id and s.score == max(track_scores))
        np.testing.assert_array_equal(record.crop, best.crop.pixels)
        frame = best.crop.frame_index
        owners = [p for (f, p), box in truth.items() if f == frame and box.as_list() == list(record.meta.box)]
        assert len(owners) == 1
        people.add(owners[0])
    assert people == set(range(N_PEOPLE))
    # Timings were measured for every stage.
    assert set(summary.stage_ms_per_frame) >= {"capture", "detect", "track", "crop", "score", "seal"}


def test_top_k_seals_k_crops_in_each_persons_record(walkby, keys, tmp_path):
    _, summary, _ = run_pipeline(walkby, keys, tmp_path, **{"quality.top_k": 3, "quality.clip_frames": 2})
    records = open_all(tmp_path / "store", keys[1])
    assert len(records) == N_PEOPLE
    for record in records:
        roles = [image.role for image in record.images]
        assert roles[:3] == ["best", "extra", "extra"] and roles.count("clip") == 5
        scores = [image.score for image in record.images[:3]]
        assert scores == sorted(scores, reverse=True)


def test_no_plaintext_image_bytes_under_store_temp_or_logs(walkby, keys, tmp_path, monkeypatch):
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp_dir))
    log_path = tmp_path / "daemon.log"
    with open(log_path, "w") as log_stream:
        configure_logging("json", stream=log_stream, level=logging.DEBUG)
        try:
            _, summary, scored = run_pipeline(walkby, keys, tmp_path)
        finally:
            configure_logging("json", stream=io.StringIO())
    assert summary.records_written == N_PEOPLE and log_path.stat().st_size > 0
    crops = [s.crop.pixels for _, s in scored]
    needles = [b"\x89PNG", b"\xff\xd8\xff"]  # PNG and JPEG magic
    # Any 32-pixel run of any crop, at a few places, as it would be stored raw.
    for pixels in crops[:: max(len(crops) // 40, 1)]:
        for row in (8, 32, 56):
            needles.append(pixels[row, 16:48].tobytes())
    files = [p for root in (tmp_path / "store", temp_dir, log_path) for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".snap" for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"plaintext image bytes in {path}"


@pytest.mark.slow
def test_real_detector_on_real_faces_gives_one_record_per_person(keys, tmp_path, assets):
    """MTCNN on a walk-by composed from the asset photos (needs `make data-assets`)."""
    from snapseal.eval.scenes.assets import load_face_patches
    from snapseal.daemon.detect import make_detector

    detector = make_detector(min_face_px=24, confidence=0.9)
    patches = load_face_patches(detector, ASSETS_DIR)
    plan = plan_walkby(320, 240, n_people=3, frames_per_person=60, n_patches=len(patches), seed=5)
    video = write_video(plan, patches, tmp_path / "real.avi")
    config = load_config(None, {"camera.source": str(video), "store.dir": str(tmp_path / "store"),
                                "keys.recipient": str(keys[0]), "detector.min_face_px": 24})
    built = build_pipeline(config, ephemeral_device_key=True, detector=detector, scorer=SharpnessScorer())
    summary = built.pipeline.run()
    assert summary.records_written == 3, summary.tracks
    assert len(open_all(tmp_path / "store", keys[1])) == 3


def test_a_source_given_as_object_is_used(walkby, keys, tmp_path):
    plan, video = walkby
    source = open_source(str(video))
    config = load_config(None, {"store.dir": str(tmp_path / "store"), "keys.recipient": str(keys[0])})
    built = build_pipeline(config, ephemeral_device_key=True, source=source, detector=TruthDetector(plan),
                           scorer=SharpnessScorer())
    assert built.pipeline.run().records_written == N_PEOPLE


def test_expired_records_are_purged_while_running(walkby, keys, tmp_path):
    from snapseal.daemon.keys import DeviceKeyPair, load_investigator_public
    from snapseal.daemon.records.seal import CropMeta, RecordSealer
    from snapseal.daemon.records.store import RecordStore

    sealer = RecordSealer(load_investigator_public(keys[0]), DeviceKeyPair.generate(), "old-cam", retention=60.0)
    old = sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(1, 0.0, (0, 0, 1, 1), 0.0, "s", "m"), now=1000.0)
    RecordStore(tmp_path / "store", quota_bytes=10**6).write(old)
    _, summary, _ = run_pipeline(walkby, keys, tmp_path)
    assert summary.records_purged == 1
    assert len(list_headers(tmp_path / "store")) == N_PEOPLE  # the old one went, today's stayed


def test_scoring_on_the_worker_thread_gives_the_records_of_inline_scoring(walkby, keys, tmp_path):
    plan, video = walkby
    outcomes = []
    for background in (False, True):
        store = tmp_path / f"store-{background}"
        config = load_config(None, {"camera.source": str(video), "store.dir": str(store), "keys.recipient": str(keys[0]),
                                    "quality.top_k": 2, "quality.clip_frames": 2, "quality.batch_size": 8})
        scored: list = []
        built = build_pipeline(config, ephemeral_device_key=True, detector=TruthDetector(plan), scorer=SharpnessScorer(),
                               on_scored=lambda track_id, s: scored.append((track_id, s.crop.frame_index, s.score)),  # noqa: B023 (used in the loop)
                               background_scoring=background)
        assert built.pipeline.chooser.background == background
        summary = built.pipeline.run()
        records = sorted(open_all(store, keys[1]), key=lambda r: r.meta.track_id)
        outcomes.append((
            [(t.track_id, t.frames, t.best_score, t.best_frame, t.sealed, t.reason) for t in summary.tracks],
            [(r.meta.track_id, r.meta.score, r.meta.box, [(i.role, i.score, i.pixels.tobytes()) for i in r.images])
             for r in records],
            scored,
        ))
        assert summary.score_busy_ms_per_frame > 0 and "score" in summary.stage_ms_per_frame
        assert not any(t.name.startswith("snapseal-score") for t in threading.enumerate())  # the worker stopped
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0][1]) == N_PEOPLE


def test_a_scorer_error_on_the_worker_stops_the_run_with_that_error(walkby, keys, tmp_path):
    from snapseal.daemon.errors import SnapsealError

    class BreaksAfterTwoBatches(SharpnessScorer):
        calls = 0

        def score_batch(self, crops):
            self.calls += 1
            if self.calls > 3:  # one warm-up call, two good batches
                raise SnapsealError("complexity scorer: non-finite score from the accelerator (test)")
            return super().score_batch(crops)

    plan, video = walkby
    config = load_config(None, {"camera.source": str(video), "store.dir": str(tmp_path / "store"),
                                "keys.recipient": str(keys[0])})
    built = build_pipeline(config, ephemeral_device_key=True, detector=TruthDetector(plan), scorer=BreaksAfterTwoBatches())
    with pytest.raises(SnapsealError, match="non-finite"):
        built.pipeline.run()
    assert built.pipeline.summary.frames < plan.n_frames  # stopped by the error, not by the end of the file
    assert not any(t.name.startswith("snapseal-score") for t in threading.enumerate())


def test_the_scorer_is_warmed_up_before_the_first_frame(walkby, keys, tmp_path):
    class Counting(SharpnessScorer):
        def __init__(self):
            self.batches = []

        def score_batch(self, crops):
            self.batches.append(crops.copy())
            return super().score_batch(crops)

    plan, video = walkby
    config = load_config(None, {"camera.source": str(video), "store.dir": str(tmp_path / "store"),
                                "keys.recipient": str(keys[0])})
    scorer = Counting()
    built = build_pipeline(config, ephemeral_device_key=True, detector=TruthDetector(plan), scorer=scorer)
    built.pipeline.source.close()
    assert len(scorer.batches) == 1 and scorer.batches[0].shape == (1, 64, 64)
    assert np.ptp(scorer.batches[0]) > 2  # not a uniform crop: a real scorer runs its accelerator on it


def test_a_track_too_short_to_seal_is_listed_with_its_reason(walkby, keys, tmp_path):
    """min_length above every walker's visible frames: nothing sealed, every track listed and why."""
    plan, summary, _ = run_pipeline(walkby, keys, tmp_path, **{"tracker.min_length_frames": 10_000})
    assert summary.records_written == 0 and summary.tracks
    assert all(not t.sealed and t.reason.startswith("too short") and "10000 needed" in t.reason for t in summary.tracks)


def test_records_carry_the_colour_evidence_of_the_kept_frame(walkby, keys, tmp_path):
    """The chooser keeps the evidence image of the kept crop only, and it reaches the record."""
    _, summary, scored = run_pipeline(walkby, keys, tmp_path)
    assert all(s.crop.evidence and s.crop.evidence[0].role == "evidence" for _, s in scored)
    kept_frames = {t.track_id: t.best_frame for t in summary.sealed_tracks()}
    assert len(kept_frames) == N_PEOPLE
