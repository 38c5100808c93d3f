"""Service plumbing: systemd notify over a real socket, JSON logs, signals, a full store."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import threading

import numpy as np
import pytest

from snapseal.daemon.choose import TrackChoice
from snapseal.daemon.keys import DeviceKeyPair, InvestigatorKeyPair
from snapseal.daemon.records.seal import RecordSealer
from snapseal.daemon.logs import configure_logging
from snapseal.daemon.sink import SealingSink
from snapseal.daemon.systemd import SystemdNotifier, stop_on_signals
from snapseal.daemon.records.store import RecordStore, list_headers
from snapseal.daemon.track import TrackInfo
from snapseal.daemon.types import Box, Detection, FaceCrop, ScoredCrop


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2.0)
    yield path, server
    server.close()


def messages(server) -> list[dict[str, str]]:
    out = []
    server.settimeout(0.2)
    while True:
        try:
            data = server.recv(4096).decode()
        except socket.timeout:
            return out
        out.append(dict(line.split("=", 1) for line in data.splitlines()))


def test_ready_watchdog_and_status_reach_the_notify_socket(notify_socket):
    path, server = notify_socket
    now = [100.0]
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"}, clock=lambda: now[0])
    assert notifier.enabled and notifier.watchdog_interval_s == 2.0  # half of WATCHDOG_USEC
    notifier.ready("running")
    notifier.tick(lambda: "5 frames")
    now[0] += 1.0
    notifier.tick(lambda: "6 frames")  # too early for another ping
    now[0] += 1.5
    notifier.tick(lambda: "9 frames")
    notifier.stopping("bye")
    got = messages(server)
    assert got[0] == {"READY": "1", "STATUS": "running"}
    assert [m for m in got if "WATCHDOG" in m] == [{"WATCHDOG": "1"}, {"WATCHDOG": "1"}]
    assert {"STATUS": "5 frames"} in got and {"STATUS": "9 frames"} in got and {"STATUS": "6 frames"} not in got
    assert got[-1] == {"STOPPING": "1", "STATUS": "bye"}
    notifier.close()


def test_no_notify_socket_means_silent_and_watchdog_for_another_pid_is_ignored(notify_socket):
    assert not SystemdNotifier({}).notify(READY=1)
    path, _ = notify_socket
    other = SystemdNotifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval_s is None


def test_abstract_socket_address_is_translated():
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "@snapseal-test"})
    assert notifier.address == "\0snapseal-test"
    notifier.close()


def test_json_logs_are_one_object_per_line():
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    logging.getLogger("snapseal.test").info("hello %s", "world", extra={"fields": {"frames": 3}})
    logging.getLogger("snapseal.test").warning("second\nline")
    configure_logging("text", stream=io.StringIO())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["msg"] == "hello world" and first["level"] == "info" and first["frames"] == 3
    assert json.loads(lines[1])["msg"] == "second\nline"


def test_sigterm_sets_the_stop_event_and_handlers_are_restored():
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2.0)
    assert signal.getsignal(signal.SIGTERM) == before


def choice(track_id: int) -> TrackChoice:
    detection = Detection(Box(1, 2, 30, 40), np.zeros((5, 2), np.float32), 0.99)
    pixels = np.random.default_rng(track_id).integers(0, 255, (64, 64), dtype=np.uint8)
    scored = ScoredCrop(FaceCrop(pixels, detection, 3, 1000.0), 1.5, "test")
    return TrackChoice(TrackInfo(track_id, 0, 9, 10, True), [scored], [], 10)


def test_a_full_store_keeps_sealed_records_and_retries_after_purge(tmp_path):
    sealer = RecordSealer(InvestigatorKeyPair.generate().public, DeviceKeyPair.generate(), "cam", 3600.0)
    store = RecordStore(tmp_path / "store", quota_bytes=12_000)  # room for ~2 records
    sink = SealingSink(sealer, store, model_id="m")
    ids = [sink.write(choice(i))[0] for i in range(4)]
    stored = {h.header.record_id for h in list_headers(tmp_path / "store")}
    assert len(ids) == 4 and stored < set(ids) and len(sink.pending) == 4 - len(stored)
    store.quota_bytes = 100_000  # space freed (e.g. by `snapseal purge`)
    sink.purge_expired()
    assert {h.header.record_id for h in list_headers(tmp_path / "store")} == set(ids)
    assert sink.pending == []


def test_watchdog_is_pinged_only_while_frames_arrive_or_a_camera_is_awaited(notify_socket):
    path, server = notify_socket
    now = [0.0]
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}, clock=lambda: now[0])
    pings = []
    for frames, waiting in [(1, False), (2, False), (2, False), (2, False), (2, True), (3, False)]:
        notifier.tick(lambda: "s", progress=frames, waiting=waiting)
        now[0] += 1.0
    got = messages(server)
    pings = sum(1 for m in got if "WATCHDOG" in m)
    # ticks at t=0 (1 frame), t=1 (2 frames), t=2..3 (stalled: no ping), t=4 (waiting: ping), t=5 (3 frames)
    assert pings == 4
    notifier.close()


def test_status_says_when_we_wait_for_a_camera_and_what_was_lost(tmp_path):
    from snapseal.daemon.pipeline import RunSummary
    from snapseal.daemon.service import status_line

    sealer = RecordSealer(InvestigatorKeyPair.generate().public, DeviceKeyPair.generate(), "cam", 3600.0)
    sink = SealingSink(sealer, RecordStore(tmp_path / "s", quota_bytes=100), model_id="m")
    for i in range(2):
        sink.write(choice(i))
    sink.close()
    line = status_line(RunSummary(frames=5), sink=sink, waiting="/dev/video0")
    assert line.startswith("waiting for camera /dev/video0") and "2 LOST" in line


def test_the_process_is_not_dumpable_and_has_no_core_limit():
    import subprocess
    import sys

    script = ("import resource, ctypes, ctypes.util\n"
              "hard = resource.getrlimit(resource.RLIMIT_CORE)[1]\n"
              "resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))  # as loose as this test may make it\n"
              "from snapseal.daemon.systemd import harden_process\n"
              "done = harden_process()\n"
              "libc = ctypes.CDLL(ctypes.util.find_library('c'))\n"
              "print(libc.prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE), done['dumpable'])\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "(0,", "0)", "0"]
