"""The sealing sink and the store under faults: provisional records, a full / read-only / deleted /
immutable store, losses counted, temp files finished after a crash."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from snapseal.daemon.choose import TrackChoice
from snapseal.daemon.keys import DeviceKeyPair, InvestigatorKeyPair
from snapseal.daemon.records import store as store_mod
from snapseal.daemon.records.layout import parse_header
from snapseal.daemon.records.seal import CropMeta, RecordSealer
from snapseal.daemon.records.store import RecordStore, StoreWriteError, list_headers
from snapseal.daemon.sink import SealingSink
from snapseal.daemon.track import TrackInfo
from snapseal.daemon.types import Box, Detection, EvidenceImage, FaceCrop, ScoredCrop
from snapseal.investigator.open import open_record

INVESTIGATOR = InvestigatorKeyPair.generate()


def scored(track_id: int, score: float, frame: int = 3, evidence: bool = True) -> ScoredCrop:
    detection = Detection(Box(1, 2, 30, 40), np.zeros((5, 2), np.float32), 0.99)
    pixels = np.random.default_rng(track_id * 1000 + frame).integers(0, 255, (64, 64), dtype=np.uint8)
    colour = np.random.default_rng(frame).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    images = (EvidenceImage(colour, "evidence", (0, 0, 30, 40)),) if evidence else ()
    return ScoredCrop(FaceCrop(pixels, detection, frame, 1_800_000_000.0 + frame, evidence=images), score, "test")


def choice(track_id: int, best: ScoredCrop | None = None) -> TrackChoice:
    best = best or scored(track_id, 1.5)
    return TrackChoice(TrackInfo(track_id, 0, 9, 10, True), [best], [], 10)


class FakeTracker:
    def __init__(self):
        self.open: dict[int, TrackInfo] = {}

    def open_tracks(self):
        return list(self.open.values())


class FakeChooser:
    on_scored = None
    ranker = None


def make_sink(tmp_path, quota=10_000_000, **kwargs):
    sealer = RecordSealer(INVESTIGATOR.public, DeviceKeyPair.generate(), "cam", 3600.0)
    store = RecordStore(tmp_path / "store", quota_bytes=quota)
    now = [0.0]
    sink = SealingSink(sealer, store, model_id="m", clock=lambda: now[0], **kwargs)
    return sink, store, now


def opened(tmp_path):
    return [open_record(s.path.read_bytes(), INVESTIGATOR) for s in list_headers(tmp_path / "store")]


def test_a_track_in_view_keeps_one_provisional_record_replaced_then_finalised(tmp_path):
    sink, store, now = make_sink(tmp_path, provisional_interval_s=5.0)
    tracker, chooser = FakeTracker(), FakeChooser()
    sink.attach(chooser, tracker)
    tracker.open[1] = TrackInfo(1, 0, 3, 3, False)
    chooser.on_scored(1, scored(1, 1.0, frame=1))
    sink.tick()
    assert opened(tmp_path) == []  # shorter than the minimum: nothing yet
    tracker.open[1] = TrackInfo(1, 0, 5, 5, True)
    sink.tick()
    (first,) = opened(tmp_path)
    assert first.provisional and first.meta.score == 1.0 and first.header.sequence == 1
    assert [i.role for i in first.images] == ["best", "evidence"]
    chooser.on_scored(1, scored(1, 3.0, frame=2))
    sink.tick()  # better, but within the interval: not yet rewritten
    assert opened(tmp_path)[0].meta.score == 1.0
    now[0] += 5.0
    sink.tick()
    (second,) = opened(tmp_path)
    assert second.meta.score == 3.0 and second.header.record_id == first.header.record_id
    del tracker.open[1]
    sink.write(choice(1, scored(1, 3.0, frame=2)))
    (final,) = opened(tmp_path)
    assert not final.provisional and final.header.record_id == first.header.record_id
    assert final.header.sequence == first.header.sequence
    assert sink.stats.records_stored == 1 and sink.stats.provisional_written == 2
    assert len(list((tmp_path / "store").glob("*.snap"))) == 1


def test_a_short_track_leaves_nothing_and_its_state_is_dropped(tmp_path):
    sink, _, _ = make_sink(tmp_path)
    tracker, chooser = FakeTracker(), FakeChooser()
    sink.attach(chooser, tracker)
    tracker.open[4] = TrackInfo(4, 0, 1, 2, False)
    chooser.on_scored(4, scored(4, 1.0))
    sink.tick()
    del tracker.open[4]
    sink.tick()
    assert sink._tracks == {} and opened(tmp_path) == []


def test_a_store_that_stays_full_counts_and_reports_the_lost(tmp_path, caplog):
    sink, store, _ = make_sink(tmp_path, quota=3 * 8000)
    ids = [sink.write(choice(i))[0] for i in range(15)]
    assert len(ids) == 15
    on_disk = len(list_headers(tmp_path / "store"))
    assert 0 < on_disk < 15 and len(sink.pending) == 15 - on_disk
    with caplog.at_level(logging.ERROR, logger="snapseal.service"):
        sink.close()
    assert sink.stats.records_stored == on_disk and sink.stats.records_lost == 15 - on_disk
    assert "LOST" in sink.status() and f"{15 - on_disk} record(s) could not be stored" in caplog.text


@pytest.mark.parametrize("code", [errno.EROFS, errno.EPERM, errno.EACCES, errno.EIO, errno.ENOSPC])
def test_any_write_error_is_queued_and_retried_until_it_works(tmp_path, monkeypatch, code):
    sink, store, now = make_sink(tmp_path)
    real = store_mod.write_file_atomically
    broken = {"on": True}

    def flaky(path, data, **kwargs):
        if broken["on"]:
            raise OSError(code, os.strerror(code))
        return real(path, data, **kwargs)

    monkeypatch.setattr(store_mod, "write_file_atomically", flaky)
    ids = [sink.write(choice(i))[0] for i in range(5)]
    assert len(sink.pending) == 5 and list_headers(tmp_path / "store") == []
    sink.tick()
    assert len(sink.pending) == 5  # the backoff has not passed
    broken["on"] = False  # remounted read-write / space freed / attribute removed
    now[0] += 60.0
    sink.tick()
    assert sink.pending == [] and {s.header.record_id for s in list_headers(tmp_path / "store")} == set(ids)
    sink.close()
    assert sink.stats.records_lost == 0 and sink.stats.records_stored == 5


def test_a_deleted_store_directory_is_made_again(tmp_path):
    sink, store, _ = make_sink(tmp_path)
    sink.write(choice(1))
    for path in (tmp_path / "store").iterdir():
        path.unlink()
    (tmp_path / "store").rmdir()
    sink.write(choice(2))
    assert store.directory_recreated == 1 and len(list_headers(tmp_path / "store")) == 1
    assert oct((tmp_path / "store").stat().st_mode & 0o777) == oct(0o700)


def test_queue_overflow_loses_the_oldest_and_counts_it(tmp_path, monkeypatch):
    sink, store, _ = make_sink(tmp_path, max_pending=3)

    def refuse(path, data, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(store_mod, "write_file_atomically", refuse)
    for i in range(5):
        sink.write(choice(i))
    assert len(sink.pending) == 3 and sink.stats.records_lost == 2


def test_a_seal_failure_is_a_counted_loss(tmp_path):
    sink, _, _ = make_sink(tmp_path)

    class Exhausted(Exception):
        pass

    def no_key(created_s):
        raise Exhausted("no period key covers this time")

    sink.sealer.recipients = type("R", (), {"recipient_for": staticmethod(no_key)})()
    with pytest.raises(Exhausted):
        sink.write(choice(1))
    assert sink.stats.records_lost == 1 and "no period key" in sink.stats.lost_reasons[0]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_complete_fsynced_temp_file_is_finished_on_restart(tmp_path):
    sealer = RecordSealer(INVESTIGATOR.public, DeviceKeyPair.generate(), "cam", 3600.0)
    record = sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(1, 1.8e9, (0, 0, 64, 64), 1.0, "s", "m"))
    tmp_path.mkdir(exist_ok=True)
    temp = tmp_path / f".snapseal-tmp-{_dead_pid()}-00aa11.part"
    temp.write_bytes(record)
    half = tmp_path / f".snapseal-tmp-{_dead_pid()}-00bb22.part"
    half.write_bytes(record[:-100])
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    name = parse_header(record).file_name
    assert [p.name for p in spool.finished_temp_files] == [name] and [p.name for p in spool.removed_temp_files] == [half.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert (tmp_path / name).read_bytes() == record


def test_store_write_error_names_the_errno(tmp_path, monkeypatch):
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    sealer = RecordSealer(INVESTIGATOR.public, DeviceKeyPair.generate(), "cam", 3600.0)
    monkeypatch.setattr(os, "link", lambda a, b: (_ for _ in ()).throw(OSError(errno.EPERM, "Operation not permitted")))
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(errno.EPERM, "Operation not permitted")))
    with pytest.raises(StoreWriteError, match="EPERM"):
        spool.write(sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(1, 1.8e9, (0, 0, 64, 64), 1.0, "s", "m")))


def test_the_running_service_reports_what_a_full_store_lost(tmp_path, caplog):
    """The daemon's run path on a walk-by with a store that holds only a few records: the summary,
    the status line and the log say how many were lost (was: "15 records", 3 on disk, no word)."""
    from snapseal.daemon.config import load_config
    from snapseal.daemon.keys import save_investigator_keys
    from snapseal.daemon.service import build_pipeline, run_service, status_line
    from snapseal.eval.scenes.walkby import TruthDetector, plan_walkby, synthetic_face_patch, write_video

    plan = plan_walkby(320, 240, n_people=6, frames_per_person=30, overlap=0.0, seed=4)
    video = write_video(plan, [synthetic_face_patch(seed=i) for i in range(6)], tmp_path / "walkby.avi")
    pub, _ = save_investigator_keys(InvestigatorKeyPair.generate(), tmp_path / "keys")
    config = load_config(None, {"camera.source": str(video), "store.dir": str(tmp_path / "store"),
                                "keys.recipient": str(pub), "store.quota_mb": 0.05, "tracker.kind": "distance",
                                "tracker.max_age_frames": 3})

    class Sharpness:
        name, model_id = "sharpness", "test"

        def score_batch(self, crops):
            return np.abs(np.diff(crops.astype(float), axis=2)).mean(axis=(1, 2))

    built = build_pipeline(config, ephemeral_device_key=True, detector=TruthDetector(plan), scorer=Sharpness())
    with caplog.at_level(logging.ERROR, logger="snapseal.service"):
        summary = run_service(built)
    on_disk = len(list_headers(tmp_path / "store"))
    assert summary.records_written == 6 and 0 < on_disk < 6
    assert summary.records_stored == on_disk and summary.records_lost == 6 - on_disk
    assert f"{6 - on_disk} LOST" in status_line(summary, sink=built.pipeline.sink)
    assert "record(s) lost" in caplog.text
