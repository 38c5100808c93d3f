"""Capture: file timestamps, live latest-frame dropping, reopen with backoff, clear errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from snapseal.daemon.capture import FileSource, LiveSource, open_source, parse_source
from snapseal.daemon.errors import SnapsealError


def write_clip(path: Path, n_frames: int = 12, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for i in range(n_frames):
        writer.write(np.full((48, 64, 3), (10 * i) % 250, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("text, kind, target", [
    ("0", "device", 0), ("/dev/video2", "device", "/dev/video2"),
    ("rtsp://user:pw@cam.local/stream", "stream", "rtsp://user:pw@cam.local/stream"),
    ("clip.mp4", "file", "clip.mp4"),
])
def test_parse_source(text, kind, target):
    spec = parse_source(text)
    assert (spec.kind, spec.target) == (kind, target)


def test_stream_credentials_never_reach_the_logs():
    assert "pw" not in parse_source("rtsp://user:pw@cam.local/stream").describe()


def test_file_source_reads_every_frame_with_file_timestamps(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", n_frames=12, fps=10.0)
    source = FileSource(parse_source(str(clip)), start_time=1000.0)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert source.ended
    assert [f.index for f in frames] == list(range(12))
    np.testing.assert_allclose([f.timestamp for f in frames], 1000.0 + np.arange(12) / 10.0, atol=1e-6)
    assert source.stats.frames_dropped == 0 and source.stats.frames_delivered == 12
    assert source.read() is None  # stays ended


class FakeFile:
    """A video file's capture: frames 0..n-1 (pixel value = index), POS_MSEC 100 ms apart,
    optionally raising on read ``fail_at``; records release and the threads that read it."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at, self.position, self.released = n, fail_at, 0, False
        self.reader_threads: set[str] = set()

    def isOpened(self) -> bool:
        return True

    def read(self):
        self.reader_threads.add(threading.current_thread().name)
        if self.fail_at is not None and self.position == self.fail_at:
            raise RuntimeError("decoder error")
        if self.position >= self.n:
            return False, None
        self.position += 1
        return True, np.full((4, 4, 3), self.position - 1, np.uint8)

    def get(self, prop: int) -> float:
        return {0: 100.0 * self.position - 100.0, 5: 10.0}.get(prop, 0.0)

    def release(self) -> None:
        self.released = True


def _drain(source: FileSource) -> list:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def test_file_source_reads_ahead_on_one_thread_without_losing_or_reordering(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", n_frames=30)
    fake = FakeFile(30)
    source = FileSource(parse_source(str(clip)), lambda spec: fake, start_time=0.0, read_ahead=2)
    frames = _drain(source)
    assert [int(f.image_bgr[0, 0, 0]) for f in frames] == list(range(30))
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(30) / 10.0, atol=1e-9)
    assert fake.released and source.ended
    # after __init__'s first read, only the reader thread touches the capture
    assert fake.reader_threads == {"MainThread", "snapseal-file-reader"}
    # the real decoder through the read-ahead gives exactly the frames cv2 gives inline
    from snapseal.daemon.capture import read_video_frames

    inline = list(read_video_frames(clip))
    ahead = _drain(FileSource(parse_source(str(clip))))
    assert len(ahead) == len(inline) == 30
    assert all(np.array_equal(a.image_bgr, b) for a, b in zip(ahead, inline))


def test_file_source_close_mid_file_stops_the_reader_and_releases(tmp_path):
    clip = write_clip(tmp_path / "clip.avi", n_frames=3)
    fake = FakeFile(10_000)
    source = FileSource(parse_source(str(clip)), lambda spec: fake, read_ahead=2)
    assert source.read() is not None
    source.close()
    assert source.ended and source.read() is None
    assert fake.released and fake.position < 10_000
    assert not any(t.name == "snapseal-file-reader" and t.is_alive() for t in threading.enumerate())


def test_a_decoder_error_mid_file_ends_the_file_after_the_good_frames(tmp_path, caplog):
    clip = write_clip(tmp_path / "clip.avi", n_frames=3)
    fake = FakeFile(10, fail_at=6)
    frames = _drain(FileSource(parse_source(str(clip)), lambda spec: fake))
    assert [int(f.image_bgr[0, 0, 0]) for f in frames] == list(range(6))
    assert fake.released
    assert any("read failed after 6 frames" in r.getMessage() for r in caplog.records)


def test_unreadable_sources_are_one_line_errors(tmp_path):
    with pytest.raises(SnapsealError, match="does not exist"):
        open_source(str(tmp_path / "absent.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(SnapsealError) as raised:
        open_source(str(junk))
    assert str(junk) in str(raised.value) and "\n" not in str(raised.value)


class FakeCamera:
    """A VideoCapture double: plays ``script`` ("frame" or "fail" per read), then frames."""

    def __init__(self, script: list[str] | None = None, opened: bool = True, delay_s: float = 0.0) -> None:
        self.script = list(script or [])
        self.opened = opened
        self.delay_s = delay_s
        self.released = False
        self.count = 0

    def isOpened(self) -> bool:
        return self.opened and not self.released

    def read(self):
        if self.delay_s:
            time.sleep(self.delay_s)
        step = self.script.pop(0) if self.script else "frame"
        if step == "fail":
            return False, None
        self.count += 1
        return True, np.full((8, 8, 3), self.count % 256, np.uint8)

    def release(self) -> None:
        self.released = True


def test_live_camera_that_disappears_is_reopened_with_backoff():
    # First capture: 3 frames then it dies. Then 3 reopen attempts fail, the 4th works.
    captures = [FakeCamera(["frame"] * 3 + ["fail"] * 10, delay_s=0.002)]
    captures += [FakeCamera(opened=False) for _ in range(3)]
    captures += [FakeCamera(delay_s=0.002)]
    opened: list[FakeCamera] = []

    def factory(spec):
        camera = captures.pop(0) if captures else FakeCamera(delay_s=0.002)
        opened.append(camera)
        return camera

    source = LiveSource(parse_source("0"), factory, backoff_initial_s=0.01, backoff_max_s=0.05, failures_before_reopen=3)
    try:
        deadline = time.time() + 10.0
        while source.stats.reconnects == 0 and time.time() < deadline:
            source.read(timeout=0.05)
        got_after = [source.read(timeout=1.0) for _ in range(3)]
    finally:
        source.close()
    assert source.stats.reconnects == 1
    assert source.stats.reopen_attempts == 4
    assert source.backoff_delays_s[:4] == [0.01, 0.02, 0.04, 0.05]  # doubles up to the maximum
    assert len(source.stats.gaps_s) == 1 and source.stats.gaps_s[0] > 0
    assert opened[0].released and all(c.released for c in opened[1:4])
    assert all(frame is not None for frame in got_after)


def test_live_source_keeps_only_the_latest_frame_and_counts_drops():
    source = LiveSource(parse_source("0"), lambda spec: FakeCamera(delay_s=0.001))
    try:
        first = source.read(timeout=2.0)
        time.sleep(0.1)  # a slow pipeline: the camera delivers many frames meanwhile
        second = source.read(timeout=2.0)
    finally:
        source.close()
    assert first is not None and second is not None
    assert second.index > first.index + 1
    assert source.stats.frames_dropped >= second.index - first.index - 1 > 0
    assert source.stats.frames_read >= source.stats.frames_delivered + source.stats.frames_dropped - 1


def test_live_source_that_cannot_open_at_start_is_an_error():
    with pytest.raises(SnapsealError, match="cannot be opened"):
        LiveSource(parse_source("/dev/video99"), lambda spec: FakeCamera(opened=False))


def test_close_stops_the_reader_thread():
    source = LiveSource(parse_source("0"), lambda spec: FakeCamera(delay_s=0.001))
    source.close()
    assert source.ended
    assert not any(t.name == "snapseal-capture" and t.is_alive() for t in threading.enumerate())


def test_a_photo_as_source_is_an_error_not_a_silent_empty_run(tmp_path):
    photo = tmp_path / "face.jpg"
    cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    renamed = tmp_path / "face.avi"
    renamed.write_bytes(photo.read_bytes())
    for path in (photo, renamed):
        with pytest.raises(SnapsealError, match="is a still image \\(JPEG\\), not a video"):
            open_source(str(path))
    png = tmp_path / "face.png"
    cv2.imwrite(str(png), np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(SnapsealError, match="still image \\(PNG\\)"):
        open_source(str(png))


def test_a_video_cut_short_says_so(tmp_path, caplog):
    clip = write_clip(tmp_path / "clip.avi", n_frames=40)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])  # damaged midway: the container still says 40 frames
    source = open_source(str(clip))
    frames = _drain(source)
    assert 0 < len(frames) < 40
    assert source.stats.truncated and source.stats.as_dict()["truncated"]
    assert any("ended after" in r.getMessage() and "of its 40 frames" in r.getMessage() for r in caplog.records)
    whole = open_source(str(write_clip(tmp_path / "whole.avi", n_frames=12)))
    assert len(_drain(whole)) == 12 and not whole.stats.truncated


def test_a_camera_missing_at_start_is_waited_for_with_backoff():
    cameras = [FakeCamera(opened=False), FakeCamera(opened=False), FakeCamera()]

    def factory(spec):
        return cameras.pop(0) if cameras else FakeCamera()

    source = open_source("0", capture_factory=factory, reconnect_max_s=0.05)
    try:
        assert isinstance(source, LiveSource) and source.waiting_for() == "0"
        frame = None
        for _ in range(200):
            frame = source.read(timeout=0.05)
            if frame is not None:
                break
        assert frame is not None and source.waiting_for() is None
        assert source.stats.reopen_attempts >= 2 and source.stats.reconnects == 1
    finally:
        source.close()
