"""The local spool (daemon/records/store.py): atomic writes, quota, expiry, disk-full, no plaintext."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from snapseal.daemon import files
from snapseal.daemon.records import store
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keys import DeviceKeyPair, InvestigatorKeyPair
from snapseal.daemon.records.layout import NotARecordError, encode_png, parse_header
from snapseal.daemon.records.seal import CropMeta, RecordSealer
from snapseal.investigator.open import open_record
from snapseal.daemon.records.store import RecordStore, StoreFullError, StoreWriteError, list_headers, purge_expired

NOW = 1_800_000_000.0
DAY = 86400.0
INVESTIGATOR = InvestigatorKeyPair.generate()
DEVICE = DeviceKeyPair.generate()


def _crop(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 64), dtype=np.uint8)


def _record(seed: int = 0, created: float = NOW, retention: float = 10 * DAY) -> bytes:
    sealer = RecordSealer(INVESTIGATOR.public, DEVICE, "cam-01", retention=retention)
    meta = CropMeta(track_id=seed, frame_time=created, box=(0, 0, 64, 64), score=-1.0, scorer="s", model_id="m")
    return sealer.seal(_crop(seed), meta, now=created)


def _names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_write_is_named_by_record_id_private_and_complete(tmp_path):
    spool = RecordStore(tmp_path / "records", quota_bytes=10_000_000)
    record = _record()
    path = spool.write(record)
    assert path.name == parse_header(record).record_id + ".snap"
    assert path.read_bytes() == record
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _names(tmp_path / "records") == [path.name]  # no temp file left
    assert spool.used_bytes == len(record) and spool.written_records == 1
    assert open_record(path.read_bytes(), INVESTIGATOR).meta.track_id == 0


def test_store_refuses_anything_that_is_not_a_record(tmp_path):
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    with pytest.raises(NotARecordError):
        spool.write(encode_png(_crop(1)))
    with pytest.raises(SnapsealError, match="header says"):
        spool.write(_record()[:-5])
    assert _names(tmp_path) == []


def _fail_os_write_after(monkeypatch, code: int, allowed_bytes: int):
    """os.write that writes `allowed_bytes` then fails like a full disk."""
    real_write = os.write
    budget = {"left": allowed_bytes}

    def fake_write(fd, data):
        if budget["left"] <= 0:
            raise OSError(code, os.strerror(code))
        chunk = bytes(data[:budget["left"]])
        budget["left"] -= len(chunk)
        return real_write(fd, chunk)

    monkeypatch.setattr(os, "write", fake_write)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_removes_temp_file_and_allows_retry(tmp_path, monkeypatch, code):
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    record = _record(3)
    _fail_os_write_after(monkeypatch, code, allowed_bytes=100)
    with pytest.raises(StoreWriteError) as caught:
        spool.write(record)
    assert caught.value.errno == code and caught.value.retryable
    assert "\n" not in str(caught.value) and errno.errorcode[code] in str(caught.value)
    assert _names(tmp_path) == []
    assert spool.used_bytes == 0 and spool.written_records == 0
    monkeypatch.undo()
    path = spool.write(record)  # the caller kept the bytes: the retry stores them
    assert path.read_bytes() == record


def test_fsync_failure_and_rename_failure_leave_no_temp_file(tmp_path, monkeypatch):
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)

    def failing_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StoreWriteError) as caught:
        spool.write(_record(4))
    assert not caught.value.retryable
    monkeypatch.undo()

    def failing_link(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "link", failing_link)
    monkeypatch.setattr(os, "replace", lambda src, dst: failing_link(src, dst))
    with pytest.raises(StoreWriteError, match="EROFS"):
        spool.write(_record(5))
    assert _names(tmp_path) == []


def test_filesystem_without_hard_links_still_writes(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    record = _record(6)
    assert spool.write(record).read_bytes() == record
    assert len(_names(tmp_path)) == 1


def test_same_record_is_never_overwritten(tmp_path):
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    record = _record(7)
    spool.write(record)
    with pytest.raises(SnapsealError, match="already stored"):
        spool.write(record)
    assert len(_names(tmp_path)) == 1


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stray_temp_files_from_a_crash_are_removed_at_start(tmp_path):
    stale = tmp_path / f".snapseal-tmp-{_dead_pid()}-00aa11.part"
    stale.write_bytes(b"half a record")
    ours = tmp_path / f".snapseal-tmp-{os.getpid()}-00bb22.part"  # pid reuse after a restart
    ours.write_bytes(b"half a record")
    live = tmp_path / f".snapseal-tmp-{os.getppid()}-00cc33.part"  # a live writer: left alone
    live.write_bytes(b"being written")
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("keep me")
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    assert sorted(p.name for p in spool.removed_temp_files) == sorted([stale.name, ours.name])
    assert _names(tmp_path) == sorted([live.name, unrelated.name])


def test_quota_refuses_and_counts_but_keeps_sealed_records(tmp_path):
    first, second, third = _record(10), _record(11), _record(12)
    spool = RecordStore(tmp_path, quota_bytes=len(first) + len(second) + len(third) // 2, clock=lambda: NOW)
    spool.write(first)
    spool.write(second)
    with pytest.raises(StoreFullError, match="full.*1 refused so far"):
        spool.write(third)
    assert spool.refused_records == 1
    assert len(_names(tmp_path)) == 2  # nothing already sealed was evicted
    assert all(open_record(p.read_bytes(), INVESTIGATOR) for p in tmp_path.iterdir())


def test_quota_makes_room_by_purging_expired_records_first(tmp_path):
    old = _record(20, created=NOW - 20 * DAY)  # expired 10 days ago
    fresh = _record(21)
    spool = RecordStore(tmp_path, quota_bytes=len(old) + len(fresh) // 2, clock=lambda: NOW)
    old_path = spool.write(old)
    new_path = spool.write(fresh)
    assert not old_path.exists() and new_path.exists()
    assert spool.refused_records == 0 and spool.used_bytes == len(fresh)


def test_used_bytes_counts_records_already_there(tmp_path):
    RecordStore(tmp_path, quota_bytes=10_000_000).write(_record(30))
    assert RecordStore(tmp_path, quota_bytes=10_000_000).used_bytes == len(_record(30))


def test_purge_expired_deletes_exactly_the_expired(tmp_path):
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    expired = [spool.write(_record(40 + i, created=NOW - (11 + i) * DAY)) for i in range(3)]
    kept = [spool.write(_record(50 + i, created=NOW - i * DAY)) for i in range(2)]
    (tmp_path / ("f" * 32 + ".snap")).write_bytes(b"garbage that is not a record")
    deleted = purge_expired(tmp_path, NOW)
    assert sorted(s.path for s in deleted) == sorted(expired)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in expired)
    assert (tmp_path / ("f" * 32 + ".snap")).exists()  # unknown expiry: left, and listed as unreadable
    assert purge_expired(tmp_path, NOW) == []
    assert len(spool.purge_expired(NOW + 30 * DAY)) == 2
    assert spool.used_bytes == len(b"garbage that is not a record")


def test_list_headers_reads_headers_only_and_reports_bad_files(tmp_path):
    spool = RecordStore(tmp_path, quota_bytes=10_000_000)
    # an hour apart: the plaintext header's times are floored to the hour (header_resolution_s)
    paths = [spool.write(_record(60 + i, created=NOW + 3600 * i)) for i in range(3)]
    truncated = paths[2].read_bytes()[:-10]
    paths[2].write_bytes(truncated)
    (tmp_path / ("0" * 32 + ".snap")).write_bytes(b"\x89PNG\r\n\x1a\n")
    listing = list_headers(tmp_path)
    assert [s.path for s in listing[:3]] == paths  # oldest first
    assert listing[0].error is None and listing[0].header.created == NOW
    assert "corrupt" in listing[2].error
    assert listing[3].header is None and "not-a-record" in listing[3].error
    with pytest.raises(SnapsealError, match="not a directory"):
        list_headers(tmp_path / "missing")


def _all_bytes_under(*roots) -> list[bytes]:
    blobs = []
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                with open(os.path.join(dirpath, name), "rb") as handle:
                    blobs.append(handle.read())
    return blobs


def test_no_plaintext_image_bytes_under_store_or_temp_dir(tmp_path, monkeypatch):
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    spool = RecordStore(tmp_path / "records", quota_bytes=10_000_000)
    crops = [_crop(70 + i) for i in range(5)]
    sealer = RecordSealer(INVESTIGATOR.public, DEVICE, "cam-01", retention=DAY)
    for index, crop in enumerate(crops):
        meta = CropMeta(track_id=index, frame_time=NOW, box=(0, 0, 64, 64), score=0.0, scorer="s", model_id="m")
        spool.write(sealer.seal(crop, meta))
    blobs = _all_bytes_under(tmp_path)
    assert len(blobs) == 5
    for blob in blobs:
        assert b"\x89PNG" not in blob and b"IDAT" not in blob
        for crop in crops:
            raw = crop.tobytes()
            png = encode_png(crop)
            for start in range(0, len(raw) - 32, 512):
                assert raw[start:start + 32] not in blob
            assert png[-200:-100] not in blob  # a slice of the compressed image data


def test_write_file_atomically_is_used_with_a_recognisable_temp_name(tmp_path, monkeypatch):
    """The crash-cleanup pattern must match the names the store actually writes."""
    seen = []
    real = files.write_file_atomically

    def spy(path, data, mode=0o600, overwrite=False, temp_name=None):
        seen.append(temp_name)
        return real(path, data, mode=mode, overwrite=overwrite, temp_name=temp_name)

    monkeypatch.setattr(store, "write_file_atomically", spy)
    RecordStore(tmp_path, quota_bytes=10_000_000).write(_record(80))
    assert len(seen) == 1 and store.TEMP_PATTERN.match(seen[0])
