"""End to end with real records: a camera seals to its keyring's period keys, `snapseal open
--warrant` opens exactly the records of that camera made inside the window, logs each opening,
and records made with a single investigator key keep opening with it."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from snapseal.cli import main
from snapseal.daemon import keys
from snapseal.daemon.keyring import load_keyring
from snapseal.daemon.records.layout import CropMeta, parse_header
from snapseal.daemon.records.seal import RecordSealer
from snapseal.investigator import authority as auth
from snapseal.investigator.opening_log import read_entries, verify_log

DAY_S = 86400.0
FIRST_DAY = date.today() - timedelta(days=2)


def crop(seed):
    return np.random.default_rng(seed).integers(0, 255, (64, 64), dtype=np.uint8)


@pytest.fixture
def fleet(tmp_path):
    auth.init_authority(tmp_path / "auth", 2, 3, tmp_path / "shares", who="test")
    authority = auth.Authority(tmp_path / "auth")
    shares = sorted((tmp_path / "shares").glob("share-*"))
    cameras = {}
    with authority.unlock_files(shares[:2]) as secret:
        for camera in ("cam-01", "cam-02"):
            issued = auth.issue_keyring(authority, secret, camera, days=6, start_day=FIRST_DAY)
            (tmp_path / f"{camera}.keyring").write_bytes(issued.blob)
            device = keys.DeviceKeyPair.generate()
            keys.save_device_keys(device, tmp_path / camera)
            keyring = load_keyring(tmp_path / f"{camera}.keyring", camera, tmp_path / "auth" / "authority.pub")
            cameras[camera] = (RecordSealer(keyring, device, camera, retention=10 * DAY_S), keyring.start_ms / 1000)
    store = tmp_path / "store"
    store.mkdir()
    return tmp_path, authority, shares, cameras, store


def seal(store, sealer, at_s, seed):
    data = sealer.seal(crop(seed), CropMeta(track_id=seed, frame_time=at_s, box=(1, 2, 30, 40), score=1.0,
                                            scorer="default", model_id="test"), now=at_s)
    header = parse_header(data)
    (store / header.file_name).write_bytes(data)
    return header.record_id


def test_open_with_a_warrant_opens_exactly_the_window_and_logs_it(fleet, capsys):
    root, authority, shares, cameras, store = fleet
    sealer1, day0 = cameras["cam-01"]
    sealer2, _ = cameras["cam-02"]
    day1 = day0 + DAY_S
    inside = [seal(store, sealer1, day1 + 10 * 3600, 1), seal(store, sealer1, day1 + 13.99 * 3600, 2)]
    outside = [seal(store, sealer1, day1 + 9 * 3600, 3),    # an hour before the window
               seal(store, sealer1, day1 + 15 * 3600, 4),   # an hour after
               seal(store, sealer1, day1 + DAY_S + 11 * 3600, 5),  # next day
               seal(store, sealer2, day1 + 11 * 3600, 6)]   # another camera, inside the window
    start, end = (datetime.fromtimestamp(s, timezone.utc).isoformat() for s in (day1 + 10 * 3600, day1 + 14 * 3600))
    assert main(["warrant", "issue", "--dir", str(root / "auth"), "--camera", "cam-01", "--from", start, "--to", end,
                 "--reference", "Court 12/2026", "--share", str(shares[0]), "--share", str(shares[1]),
                 "--out", str(root / "w.warrant")]) == 0
    capsys.readouterr()
    out = root / "out"
    code = main(["open", str(store), "--warrant", str(root / "w.warrant"), "--log", str(root / "inspector.log"),
                 "--who", "inspector", "--trust", str(root / "cam-01" / "device.pub"),
                 "--trust", str(root / "cam-02" / "device.pub"), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    opened_ids = {p.stem for p in out.glob("*.json")}
    assert opened_ids == set(inside)
    assert not any(rid in p.name for p in out.iterdir() for rid in outside)
    assert "not covered by the warrant" in captured.out
    assert all(len(line) > 0 for line in captured.err.strip().splitlines())
    entries = read_entries(root / "inspector.log")
    assert [e["kind"] for e in entries] == ["warrant-presented", "record-opened", "record-opened"]
    assert {e["records"][0] for e in entries[1:]} == set(inside)
    assert verify_log(root / "inspector.log", authority.public.sign_key).ok
    for rid in inside:
        summary = json.loads((out / f"{rid}.json").read_text())
        assert summary["camera_id"] == "cam-01"


def test_an_expired_warrant_opens_nothing_and_writes_nothing(fleet, capsys):
    root, authority, shares, cameras, store = fleet
    sealer1, day0 = cameras["cam-01"]
    seal(store, sealer1, day0 + 3600, 1)
    with authority.unlock_files(shares[:2]) as secret:
        from snapseal.investigator import warrant as wr

        wr.issue_warrant(authority, secret, ["cam-01"], int(day0 * 1000), int((day0 + DAY_S) * 1000), "Old case",
                         root / "old.warrant", valid_days=1, at_ms=int((day0 - 3 * DAY_S) * 1000))
    code = main(["open", str(store), "--warrant", str(root / "old.warrant"), "--log", str(root / "i.log"),
                 "--trust", str(root / "cam-01" / "device.pub"), "--out", str(root / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "expired on" in err and len(err.strip().splitlines()) == 1
    assert not (root / "out").exists() and not (root / "i.log").exists()


def test_records_sealed_to_a_single_investigator_key_keep_opening_with_it(tmp_path, capsys):
    investigator = keys.InvestigatorKeyPair.generate()
    keys.save_investigator_keys(investigator, tmp_path / "inv")
    device = keys.DeviceKeyPair.generate()
    keys.save_device_keys(device, tmp_path / "dev")
    store = tmp_path / "store"
    store.mkdir()
    sealer = RecordSealer(investigator.public, device, "cam-legacy", retention=10 * DAY_S)
    record_id = seal(store, sealer, 1_796_256_000.0 + 3600, 9)
    code = main(["open", str(store), "--key", str(tmp_path / "inv" / "investigator.key"),
                 "--trust", str(tmp_path / "dev" / "device.pub"), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / f"{record_id}.json").exists()
