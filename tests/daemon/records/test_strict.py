"""Strict opening: what the format forbids is refused with one documented error, one verdict per
record across ls / verify / open, a bad record never stops the others, nothing leaves --out."""

from __future__ import annotations

import json
import os
import struct

import cv2
import numpy as np
import pytest
from craft import NOW, craft, craft_meta, good_meta, image_entry

from snapseal.cli import main
from snapseal.daemon import keys
from snapseal.daemon.records import layout
from snapseal.daemon.records.layout import CorruptRecordError, RecordError, parse_header
from snapseal.daemon.records.seal import CropMeta, RecordSealer, SealedImage, seal_record
from snapseal.daemon.records.store import RecordStore, StoreSequence
from snapseal.daemon.records.verify import check_file, verify_record
from snapseal.investigator.open import open_record

INVESTIGATOR = keys.InvestigatorKeyPair.generate()
DEVICE = keys.DeviceKeyPair.generate()


def _png(shape=(64, 64), seed=0) -> bytes:
    return layout.encode_png(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


def _meta(images=None, **changes) -> dict:
    return good_meta(DEVICE, images or [image_entry(64, 64)], **changes)


def _crafted(meta: dict, images=None, **kwargs) -> bytes:
    return craft_meta(DEVICE, INVESTIGATOR.public, meta, images or [_png()], **kwargs)


def test_a_crafted_good_record_opens():
    opened = open_record(_crafted(_meta()), INVESTIGATOR)
    assert opened.camera_id == "cam-01" and opened.created_ms == int(NOW * 1000) + 1234


@pytest.mark.parametrize("change, message", [
    ({"track_id": 7.9}, "metadata.track_id is not an integer >= 0"),
    ({"track_id": True}, "metadata.track_id is not an integer >= 0"),
    ({"frame_time": "123"}, "metadata.frame_time is not a number"),
    ({"frame_time": -1.0}, "metadata.frame_time is out of range"),
    ({"box": [1, 2, 3]}, "metadata.box is not a list of 4 numbers"),
    ({"camera_id": "cam\x1b[2J"}, "metadata.camera_id holds control or invisible characters"),
    ({"camera_id": "cam\u202e10"}, "metadata.camera_id holds control or invisible characters"),
    ({"extra_field": 1}, "metadata has unknown key extra_field"),
    ({"schema": "snapseal.record-meta/9"}, "metadata.schema is not 'snapseal.record-meta/2'"),
    ({"device_key_id": "00" * 8}, "signed metadata names device key 0000000000000000, the header"),
    ({"sequence": 2}, "signed sequence 2 differs from the header's 1"),
    ({"created_ms": int(NOW * 1000) + 3600_000}, "the header's created is not the sealed creation time"),
])
def test_metadata_is_checked_strictly(change, message):
    with pytest.raises(CorruptRecordError, match=message.replace("[", r"\[").replace("(", r"\(")):
        open_record(_crafted(_meta(**change)), INVESTIGATOR)


def test_nan_and_duplicate_keys_are_not_json():
    text = json.dumps(_meta(), sort_keys=True).replace('"score": -1234.5', '"score": NaN', 1)
    with pytest.raises(CorruptRecordError, match="not standard JSON"):
        open_record(craft(DEVICE, INVESTIGATOR.public, text.encode(), [_png()]), INVESTIGATOR)
    text = json.dumps(_meta(), sort_keys=True)[:-1] + ', "track_id": 8}'
    with pytest.raises(CorruptRecordError, match="duplicate key track_id"):
        open_record(craft(DEVICE, INVESTIGATOR.public, text.encode(), [_png()]), INVESTIGATOR)


@pytest.mark.parametrize("images, entries, message", [
    (["x/y"], None, "role 'x/y' is not one of"),
    (["a\x00b"], None, "role holds control or invisible characters"),
    (["extra"], None, "the first image and only it is 'best'"),
    (["best", "best"], None, "the first image and only it is 'best'"),
    (["best", "evidence"], [image_entry(64, 64), image_entry(64, 64, role="evidence")], "a evidence image is colour"),
])
def test_unknown_misplaced_and_unsafe_roles_are_refused(images, entries, message):
    entries = entries or [image_entry(64, 64, role=role) for role in images]
    record = _crafted(_meta(images=entries), [_png(seed=i) for i in range(len(entries))])
    with pytest.raises(CorruptRecordError, match=message):
        open_record(record, INVESTIGATOR)


def test_a_bmp_or_a_wrong_size_is_not_the_documented_png():
    ok, bmp = cv2.imencode(".bmp", np.zeros((64, 64), np.uint8))
    with pytest.raises(CorruptRecordError, match="not a PNG"):
        open_record(_crafted(_meta(), [bmp.tobytes()]), INVESTIGATOR)
    with pytest.raises(CorruptRecordError, match="says 64x64x1, the PNG is 32x64x1"):
        open_record(_crafted(_meta(), [_png((64, 32))]), INVESTIGATOR)


def test_header_times_expiring_before_creation_or_negative_are_corrupt():
    with pytest.raises(CorruptRecordError, match="expires before it was created"):
        verify_record(_crafted(_meta(), created_s=int(NOW), expires_s=int(NOW) - 3600))
    with pytest.raises(CorruptRecordError, match="out of range"):
        verify_record(_crafted(_meta(), created_s=-3600))


def test_plaintext_header_is_coarse_and_the_exact_time_is_sealed():
    sealer = RecordSealer(INVESTIGATOR.public, DEVICE, "cam-01", retention=86400.0)
    created = NOW + 1234.567
    record = sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(1, created, (0, 0, 64, 64), 1.0, "s", "m"), now=created)
    header = parse_header(record)
    assert header.created == NOW and header.expires == NOW + 86400  # floored to the hour
    opened = open_record(record, INVESTIGATOR)
    assert opened.created == pytest.approx(created, abs=1e-3) and opened.plaintext_header.created == NOW
    assert opened.summary()["created"] == pytest.approx(created, abs=1e-3)


def test_version_1_records_still_open():
    crop = np.random.default_rng(3).integers(0, 256, (64, 64), dtype=np.uint8)
    record = seal_record(crop, CropMeta(2, NOW, (0, 0, 64, 64), 1.5, "s", "m"), "cam-v1", INVESTIGATOR.public,
                         DEVICE, created=NOW + 0.123, expires=NOW + 86400, version=1)
    assert parse_header(record).version == 1 and len(record) == 88 + 64 + parse_header(record).body_length
    opened = open_record(record, INVESTIGATOR)
    assert np.array_equal(opened.crop, crop) and opened.header.created == NOW + 0.123


def test_evidence_images_are_sealed_with_role_size_and_position():
    colour = np.random.default_rng(4).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    sealer = RecordSealer(INVESTIGATOR.public, DEVICE, "cam-01", retention=86400.0)
    evidence = SealedImage(colour, NOW, role="evidence", box=(100, 50, 240, 230), scale=0.5, padded=True)
    record = sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(1, NOW, (120, 80, 200, 160), 1.0, "s", "m"),
                         extras=[evidence], now=NOW)
    opened = open_record(record, INVESTIGATOR)
    image = opened.evidence[0]
    assert np.array_equal(image.pixels, colour)
    entry = opened.summary()["images"][1]
    assert entry == {"role": "evidence", "width": 70, "height": 90, "channels": 3, "frame_time": NOW,
                     "box": [100.0, 50.0, 240.0, 230.0], "score": None, "scale": 0.5, "padded": True}


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def site(tmp_path):
    assert main(["keygen", "--out", str(tmp_path / "inv")]) == 0
    assert main(["keygen", "--device", "--out", str(tmp_path / "dev"), "--trusted-by", str(tmp_path / "inv")]) == 0
    investigator = keys.load_investigator_private(tmp_path / "inv" / "investigator.key")
    device = keys.load_device_signing(tmp_path / "dev" / "device.key")
    return tmp_path, investigator, device


def _open(tmp_path, *extra):
    return main(["open", str(tmp_path / "records"), "--key", str(tmp_path / "inv" / "investigator.key"),
                 "--out", str(tmp_path / "out"), *extra])


def _all_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_a_bad_record_never_stops_the_others_and_nothing_leaves_out(site, capsys):
    tmp_path, investigator, device = site
    records = tmp_path / "records"
    records.mkdir()
    good = [RecordSealer(investigator.public, device, "cam-07", 86400.0).seal(
        np.full((64, 64), i, np.uint8), CropMeta(i, NOW, (0, 0, 64, 64), 1.0, "s", "m"), now=NOW) for i in range(3)]
    entries = [image_entry(64, 64), image_entry(64, 64, role="../../escape"), image_entry(64, 64, role="a\x00b")]
    hostile = craft_meta(device, investigator.public, good_meta(device, entries), [_png(seed=i) for i in range(3)],
                         record_id="00" * 16)
    for data in [hostile, *good]:  # the hostile one first: it sorts first, too
        (records / parse_header(data).file_name).write_bytes(data)
    before = set(_all_files(tmp_path))
    capsys.readouterr()
    assert _open(tmp_path) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "\x00" not in captured.err + captured.out
    assert "opened 3 of 4" in captured.out
    new = set(_all_files(tmp_path)) - before
    assert all(name.startswith("out" + os.sep) for name in new)
    assert len([n for n in new if n.endswith(".png")]) == 3 and not any("escape" in n for n in new)


def test_one_verdict_for_a_renamed_record_across_ls_verify_open(site, capsys):
    tmp_path, investigator, device = site
    records = tmp_path / "records"
    records.mkdir()
    data = RecordSealer(investigator.public, device, "cam-07", 86400.0).seal(
        np.zeros((64, 64), np.uint8), CropMeta(1, NOW, (0, 0, 64, 64), 1.0, "s", "m"), now=NOW)
    (records / "renamed.snap").write_bytes(data)
    record_id = parse_header(data).record_id
    capsys.readouterr()
    assert main(["ls", str(records)]) == 0
    ls_out = capsys.readouterr().out
    assert f"file name is not {record_id}.snap" in ls_out and "unreadable" not in ls_out
    assert main(["verify", str(records)]) == 0
    assert f"file name is not {record_id}.snap" in capsys.readouterr().out
    assert _open(tmp_path) == 0
    assert f"file name is not {record_id}.snap" in capsys.readouterr().out
    assert check_file(records / "renamed.snap").word == "ok"


def test_trust_by_default_and_untrusted_opening_is_explicit(site, capsys):
    tmp_path, investigator, _ = site
    records = tmp_path / "records"
    records.mkdir()
    stranger = keys.DeviceKeyPair.generate()
    data = RecordSealer(investigator.public, stranger, "cam-x", 86400.0).seal(
        np.zeros((64, 64), np.uint8), CropMeta(1, NOW, (0, 0, 64, 64), 1.0, "s", "m"), now=NOW)
    (records / parse_header(data).file_name).write_bytes(data)
    capsys.readouterr()
    assert _open(tmp_path) == 1
    assert "untrusted-device" in capsys.readouterr().err
    assert not (tmp_path / "out" / f"{parse_header(data).record_id}.png").exists()
    assert _open(tmp_path, "--allow-untrusted") == 0
    err = capsys.readouterr().err
    assert "opened" in err and "untrusted device" in err and stranger.key_id in err
    summary = json.loads((tmp_path / "out" / f"{parse_header(data).record_id}.json").read_text())
    assert summary["device_trusted"] is False and summary["opened_untrusted_by_choice"] is True
    (tmp_path / "inv" / keys.TRUST_FILE_NAME).unlink()
    assert _open(tmp_path) == 2
    assert "no trusted devices" in capsys.readouterr().err


def test_private_key_files_with_loose_modes_are_refused(site):
    tmp_path, _, _ = site
    for path in (tmp_path / "inv" / "investigator.key", tmp_path / "dev" / "device.key"):
        for mode in (0o644, 0o666, 0o640):
            os.chmod(path, mode)
            with pytest.raises(keys.SnapsealError, match=f"mode {mode:04o}.*refusing it"):
                (keys.load_investigator_private if "investigator" in path.name else keys.load_device_signing)(path)
        os.chmod(path, 0o600)
    os.chmod(tmp_path / "inv" / "investigator.key", 0o644)
    assert _open(tmp_path) == 2


def test_sequence_gaps_and_copies_are_reported(site, capsys):
    tmp_path, investigator, device = site
    store_dir = tmp_path / "records"
    store = RecordStore(store_dir, 10_000_000)
    sequence = StoreSequence(store_dir, device.key_id)
    sealer = RecordSealer(investigator.public, device, "cam-07", 86400.0 * 3650, sequencer=sequence)
    paths = [store.write(sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(i, NOW, (0, 0, 64, 64), 1.0, "s", "m")))
             for i in range(5)]
    assert [parse_header(p.read_bytes()).sequence for p in paths] == [1, 2, 3, 4, 5]
    capsys.readouterr()
    assert main(["verify", str(store_dir)]) == 0
    paths[2].unlink()
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "other-name.snap").write_bytes(paths[0].read_bytes())
    capsys.readouterr()
    assert main(["verify", str(store_dir), str(tmp_path / "copy")]) == 1
    out = capsys.readouterr().out
    assert "gap  device" in out and "sequence 3 missing" in out
    assert f"the same record as {paths[0]}" in out
    # the numbers survive a restart (the daemon saves the counter at shutdown), also when every record went
    sequence.save()
    for path in store_dir.glob("*.snap"):
        path.unlink()
    assert StoreSequence(store_dir, device.key_id)() == 6


def test_purge_does_not_believe_an_unverifiable_expiry(tmp_path):
    store = RecordStore(tmp_path, 10_000_000)
    sealer = RecordSealer(INVESTIGATOR.public, DEVICE, "cam", 10 * 86400.0)
    paths = [store.write(sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(i, NOW, (0, 0, 64, 64), 1.0, "s", "m"),
                                     now=NOW)) for i in range(2)]
    for path, expiry in zip(paths, (int(NOW) + 100 * 365 * 86400, int(NOW) - 86400)):  # far future, past
        data = bytearray(path.read_bytes())
        struct.pack_into(">q", data, 36, expiry)
        path.write_bytes(bytes(data))
        os.utime(path, (NOW, NOW))
    assert store.purge_expired(NOW + 86400) == []  # the past one is not believed
    store.retention_s = 10 * 86400.0
    assert store.purge_expired(NOW + 5 * 86400) == []
    assert sorted(s.path for s in store.purge_expired(NOW + 11 * 86400)) == sorted(paths)  # by file age


def test_record_errors_never_print_raw_control_characters():
    error = RecordError("bad\x1b[31mname.snap", "x")
    assert "\x1b" not in str(error) and "\\x1b" in str(error)


def test_the_store_re_checks_a_file_that_changed_since_its_last_purge(tmp_path):
    store = RecordStore(tmp_path, 10_000_000)
    sealer = RecordSealer(INVESTIGATOR.public, DEVICE, "cam", 86400.0)
    path = store.write(sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(1, NOW, (0, 0, 64, 64), 1.0, "s", "m"),
                                   now=NOW))
    assert store.purge_expired(NOW) == [] and store._verdicts[path.name][1].error is None
    data = bytearray(path.read_bytes())
    struct.pack_into(">q", data, 36, int(NOW))  # expiry forged to now
    path.write_bytes(bytes(data))
    assert store.purge_expired(NOW) == []  # not believed: it no longer verifies
    assert "tampered" in store._verdicts[path.name][1].error and path.exists()


def test_a_write_failure_for_one_record_leaves_none_of_its_files_and_the_rest_open(site, capsys, monkeypatch):
    from snapseal.daemon import files

    tmp_path, investigator, device = site
    records = tmp_path / "records"
    records.mkdir()
    sealer = RecordSealer(investigator.public, device, "cam-07", 86400.0)
    colour = np.zeros((20, 16, 3), np.uint8)
    ids = []
    for i in range(3):
        data = sealer.seal(np.full((64, 64), i, np.uint8), CropMeta(i, NOW, (0, 0, 64, 64), 1.0, "s", "m"),
                           extras=[SealedImage(colour, NOW, role="evidence", box=(0, 0, 16, 20))], now=NOW)
        (records / parse_header(data).file_name).write_bytes(data)
        ids.append(parse_header(data).record_id)
    victim = sorted(ids)[1]
    real = files.write_file_atomically

    def failing(path, data, **kwargs):
        if path.name == f"{victim}-evidence-01.png":
            raise OSError(28, "No space left on device")
        return real(path, data, **kwargs)

    monkeypatch.setattr(files, "write_file_atomically", failing)
    capsys.readouterr()
    assert _open(tmp_path) == 1
    err = capsys.readouterr().err
    assert f"cannot write into {tmp_path / 'out'}" in err and "Traceback" not in err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not [name for name in written if name.startswith(victim)]
    assert len(written) == 2 * 3  # the other two records: crop, evidence, json
