"""``snapseal run`` as a process: one-line errors (exit 2), and SIGTERM mid-track seals the track."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import ASSETS_DIR, require_built

from snapseal.daemon.keys import InvestigatorKeyPair, load_investigator_private, save_investigator_keys
from snapseal.investigator.open import open_record
from snapseal.daemon.records.store import list_headers


def snapseal(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snapseal.daemon.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, **kwargs)


@pytest.fixture
def keys(tmp_path):
    return save_investigator_keys(InvestigatorKeyPair.generate(), tmp_path / "keys")


def assert_one_line_error(process: subprocess.Popen, *words: str) -> None:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snapseal: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


def test_bad_config_is_one_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[tracker]\nmax_age_frames = -3\n")
    assert_one_line_error(snapseal("run", "--config", str(config)), str(config), "max_age_frames")


def test_missing_key_file_is_one_line(tmp_path):
    missing = tmp_path / "nope.pub"
    assert_one_line_error(snapseal("run", "--source", "x.mp4", "--store", str(tmp_path / "s"), "--recipient", str(missing)),
                          "--recipient", str(missing))


def test_missing_device_key_needs_an_explicit_choice(tmp_path, keys):
    assert_one_line_error(snapseal("run", "--source", "x.mp4", "--store", str(tmp_path / "s"), "--recipient", str(keys[0])),
                          "--device-key", "--ephemeral-device-key")


def test_unreadable_source_is_one_line(tmp_path, keys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 20)
    assert_one_line_error(snapseal("run", "--source", str(junk), "--store", str(tmp_path / "s"), "--recipient",
                                   str(keys[0]), "--ephemeral-device-key"), str(junk))


def walkby_with_one_person(path: Path, frames: int) -> Path:
    require_built(ASSETS_DIR / ".ready")
    from snapseal.eval.scenes.assets import load_face_patches
    from snapseal.eval.scenes.walkby import plan_walkby, write_video
    from snapseal.daemon.detect import make_detector

    patches = load_face_patches(make_detector(min_face_px=40), ASSETS_DIR)[:1]
    return write_video(plan_walkby(320, 240, n_people=1, frames_per_person=frames, seed=2), patches, path)


@pytest.mark.slow
def test_sigterm_in_the_middle_of_a_track_still_seals_its_best_crop(tmp_path, keys):
    video = walkby_with_one_person(tmp_path / "one.avi", frames=300)  # 12 s at 25 fps, replayed in real time
    config = tmp_path / "run.toml"
    config.write_text("[camera]\nrealtime = true\n[detector]\nmin_face_px = 30\n[service]\nlog_format = \"json\"\n")
    notify_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(notify_path))
    server.settimeout(120.0)
    process = snapseal("run", "--config", str(config), "--source", str(video), "--store", str(tmp_path / "store"),
                       "--recipient", str(keys[0]), "--ephemeral-device-key",
                       env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "200000"})
    try:
        frames = 0
        ready = False
        while frames < 60:  # the person is in view from about frame 20 on: the track is open
            message = dict(line.split("=", 1) for line in server.recv(4096).decode().splitlines())
            ready = ready or message.get("READY") == "1"
            if ready and "STATUS" in message and message["STATUS"].split(" ")[0].isdigit():
                frames = int(message["STATUS"].split(" ")[0])
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        server.close()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    headers = list_headers(tmp_path / "store")
    assert len(headers) == 1
    record = open_record(headers[0].path.read_bytes(), load_investigator_private(keys[1]))
    assert record.header.record_id in out  # the per-track summary names it
    assert record.meta.track_id == 1
    processed = int(out.strip().splitlines()[-1].split(" ")[0])
    assert 60 <= processed < 300  # stopped by the signal, not by the end of the file


def test_records_the_store_cannot_take_are_reported_and_the_exit_code_says_so(tmp_path, keys):
    """A store whose quota holds no record: the run still ends, names the losses and exits 3."""
    video = walkby_with_one_person(tmp_path / "one.avi", frames=80)
    config = tmp_path / "run.toml"
    config.write_text("[detector]\nmin_face_px = 30\n[store]\nquota_mb = 0.001\n[service]\nlog_format = \"text\"\n")
    process = snapseal("run", "--config", str(config), "--source", str(video), "--store", str(tmp_path / "store"),
                       "--recipient", str(keys[0]), "--ephemeral-device-key")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 3, (out, err)
    assert "Traceback" not in err
    last = out.strip().splitlines()[-1]
    assert "LOST" in last and "0 stored" in last, last
    assert list_headers(tmp_path / "store") == []
