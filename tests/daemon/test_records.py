"""`snapseal keygen | ls | open | verify | purge` end to end, in-process and as a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from snapseal.daemon import keys
from snapseal.daemon.cli import main
from snapseal.daemon.records.layout import parse_header
from snapseal.daemon.records.seal import CropMeta, RecordSealer, SealedImage
from snapseal.daemon.records.store import RecordStore

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86400.0
SNAPSEAL = Path(sys.executable).parent / "snapseal"  # the console script of the venv running the tests


def _crop(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 64), dtype=np.uint8)


@pytest.fixture
def site(tmp_path):
    """Investigator + device keys made by the CLI, and a store with 3 records (one with a clip)."""
    assert main(["keygen", "--out", str(tmp_path / "inv")]) == 0
    assert main(["keygen", "--device", "--out", str(tmp_path / "dev"), "--trusted-by", str(tmp_path / "inv")]) == 0
    investigator_pub = keys.load_investigator_public(tmp_path / "inv" / "investigator.pub")
    device = keys.load_device_signing(tmp_path / "dev" / "device.key")
    sealer = RecordSealer(investigator_pub, device, "cam-07", retention=10 * DAY, header_resolution_s=1)
    spool = RecordStore(tmp_path / "records", quota_bytes=10_000_000)
    crops = {}
    for track in range(3):
        meta = CropMeta(track_id=track, frame_time=NOW + track, box=(1, 2, 65, 66), score=-100.0 - track,
                        scorer="default", model_id="vae-1")
        extras = [SealedImage(_crop(100 + i), NOW + track - 0.1 * i, role="clip") for i in range(2)] if track == 1 else []
        path = spool.write(sealer.seal(_crop(track), meta, extras=extras, now=NOW + track))
        crops[parse_header(path.read_bytes()).record_id] = (_crop(track), path)
    return tmp_path, crops


def _one_line_errors(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("snapseal: ") for line in lines), err
    return lines


def test_keygen_writes_the_documented_files(site):
    tmp_path, _ = site
    assert stat.S_IMODE(os.stat(tmp_path / "inv" / "investigator.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "dev" / "device.key").st_mode) == 0o600
    assert (tmp_path / "inv" / "investigator.pub").exists() and (tmp_path / "dev" / "device.pub").exists()
    assert main(["keygen", "--out", str(tmp_path / "inv")]) == 2  # no overwrite without --force
    assert main(["keygen", "--out", str(tmp_path / "inv"), "--force"]) == 0


def test_ls_lists_headers_without_a_key(site, capsys):
    tmp_path, crops = site
    capsys.readouterr()
    assert main(["ls", str(tmp_path / "records")]) == 0
    out = capsys.readouterr().out
    for record_id in crops:
        assert record_id in out
    assert "3 records" in out
    assert main(["ls", str(tmp_path / "records"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["record_id"] for row in rows} == set(crops)
    assert all(row["error"] is None and row["expires"] - row["created"] == 10 * DAY for row in rows)


def test_open_writes_png_and_json_for_every_record(site, capsys):
    tmp_path, crops = site
    out = tmp_path / "opened"
    rc = main(["open", str(tmp_path / "records"), "--key", str(tmp_path / "inv" / "investigator.key"),
               "--out", str(out), "--trust", str(tmp_path / "dev" / "device.pub")])
    assert rc == 0
    device_id = keys.load_device_public(tmp_path / "dev" / "device.pub").key_id
    for record_id, (crop, _) in crops.items():
        assert np.array_equal(cv2.imread(str(out / f"{record_id}.png"), cv2.IMREAD_UNCHANGED), crop)
        summary = json.loads((out / f"{record_id}.json").read_text())
        assert summary["camera_id"] == "cam-07" and summary["device_key_id"] == device_id
        assert summary["box"] == [1.0, 2.0, 65.0, 66.0] and summary["scorer"] == "default"
        assert summary["frame_time"] == NOW + summary["track_id"] and summary["model_id"] == "vae-1"
        assert summary["device_trusted"] is True
        for image in summary["images"]:
            assert (out / image["file"]).exists()
        assert stat.S_IMODE(os.stat(out / f"{record_id}.png").st_mode) == 0o600
    assert len(list(out.glob("*-clip-*.png"))) == 2
    assert "opened 3 of 3" in capsys.readouterr().out


def test_tampered_and_foreign_records_are_reported_and_skipped(site, capsys):
    tmp_path, crops = site
    (record_a, (_, path_a)), (record_b, (_, path_b)), (record_c, _) = sorted(crops.items())
    data = bytearray(path_a.read_bytes())
    data[len(data) // 2] ^= 0x40
    path_a.write_bytes(bytes(data))
    # record_b is sealed to another investigator: write a foreign one over it
    other = keys.InvestigatorKeyPair.generate()
    foreign = RecordSealer(other.public, keys.load_device_signing(tmp_path / "dev" / "device.key"), "cam-07", DAY)
    foreign_bytes = foreign.seal(_crop(9), CropMeta(9, NOW, (0, 0, 1, 1), 0.0, "s", "m"), now=NOW)
    foreign_path = tmp_path / "records" / parse_header(foreign_bytes).file_name
    foreign_path.write_bytes(foreign_bytes)
    capsys.readouterr()

    assert main(["verify", str(tmp_path / "records")]) == 1
    captured = capsys.readouterr()
    errors = _one_line_errors(captured.err)
    assert len(errors) == 1 and str(path_a) in errors[0] and "tampered" in errors[0]
    assert "3 ok, 1 failed" in captured.out

    out = tmp_path / "opened"
    rc = main(["open", str(tmp_path / "records"), "--key", str(tmp_path / "inv" / "investigator.key"), "--out", str(out)])
    assert rc == 1
    errors = [line for line in _one_line_errors(capsys.readouterr().err) if "note:" not in line]
    assert len(errors) == 2
    assert any(str(path_a) in e and "tampered" in e for e in errors)
    assert any(str(foreign_path) in e and "wrong-key" in e for e in errors)
    assert sorted(p.name for p in out.glob("*.png")) == sorted([f"{record_b}.png", f"{record_c}.png"] +
                                                              [p.name for p in out.glob(f"{record_b}-clip-*.png")] +
                                                              [p.name for p in out.glob(f"{record_c}-clip-*.png")])
    assert not (out / f"{record_a}.png").exists()


def test_untrusted_device_is_rejected_with_trust(site, capsys):
    tmp_path, crops = site
    assert main(["keygen", "--device", "--out", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "records"), "--trust", str(tmp_path / "other" / "device.pub")]) == 1
    assert len(_one_line_errors(capsys.readouterr().err)) == 3
    rc = main(["open", str(tmp_path / "records"), "--key", str(tmp_path / "inv" / "investigator.key"),
               "--out", str(tmp_path / "o"), "--trust", str(tmp_path / "other" / "device.pub")])
    assert rc == 1 and "untrusted-device" in capsys.readouterr().err
    assert not list((tmp_path / "o").glob("*.png"))


def test_wrong_key_kind_and_missing_inputs_are_one_line_errors(site, capsys):
    tmp_path, _ = site
    capsys.readouterr()
    assert main(["open", str(tmp_path / "records"), "--key", str(tmp_path / "inv" / "investigator.pub"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "investigator.pub" in err and "expected an investigator private key" in err
    assert main(["verify", str(tmp_path / "nothing-here")]) == 2
    assert "nothing-here" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "records"), "--trust", str(tmp_path / "dev" / "device.key")]) == 2
    assert "expected a device public key" in capsys.readouterr().err


def test_purge_deletes_expired_records_only(site, capsys):
    tmp_path, crops = site
    records = tmp_path / "records"
    # expiries are NOW + 10 days + 0/1/2 s; at +10 days +1.5 s two have expired
    assert main(["purge", str(records), "--now", "2027-01-25T08:00:01.5Z", "--dry-run"]) == 0
    assert "would delete 2" in capsys.readouterr().out and len(list(records.glob("*.snap"))) == 3
    assert main(["purge", str(records), "--now", "2027-01-25T08:00:01.5"]) == 0
    out = capsys.readouterr().out
    assert "deleted 2 expired records" in out
    remaining = {parse_header(p.read_bytes()).record_id for p in records.glob("*.snap")}
    assert len(remaining) == 1 and remaining < set(crops)
    assert main(["purge", str(records)]) == 0  # real now (2026) is before the expiry
    assert len(list(records.glob("*.snap"))) == 1
    assert main(["purge", str(records), "--now", "next tuesday"]) == 2


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SNAPSEAL), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_console_script_end_to_end(site):
    tmp_path, crops = site
    assert SNAPSEAL.exists(), f"no console script next to {sys.executable}"
    listed = _run("ls", "records", "--json", cwd=tmp_path)
    assert listed.returncode == 0 and {r["record_id"] for r in json.loads(listed.stdout)} == set(crops)
    verified = _run("verify", "records", "--trust", "dev/device.pub", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    opened = _run("open", "records", "--key", "inv/investigator.key", "--out", "opened", "--trust", "dev/device.pub",
                  cwd=tmp_path)
    assert opened.returncode == 0, opened.stderr
    assert len(list((tmp_path / "opened").glob("*.json"))) == 3
    missing = _run("open", "records", "--key", "inv/nope.key", "--out", "o", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and missing.stderr.startswith("snapseal: error: inv/nope.key")


def test_verify_accepts_a_renamed_record_but_says_so(site, capsys):
    tmp_path, crops = site
    record_id, (_, path) = next(iter(crops.items()))
    copy = tmp_path / "evidence-42.snap"
    copy.write_bytes(path.read_bytes())
    capsys.readouterr()
    assert main(["verify", str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"ok  {record_id}" in out and f"file name is not {record_id}.snap" in out
