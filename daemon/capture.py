"""Capture: frames with real timestamps from a V4L2 camera, an RTSP/HTTP stream or a video file.

- A **file** is read frame by frame (nothing dropped); a frame's timestamp is the opening wall
  clock time plus the file position (``CAP_PROP_POS_MSEC``), so a replayed file keeps its own
  timing. The source ends cleanly at the end of the file.
- A **live** source (device index, ``/dev/videoN``, URL) is read by a background thread that
  keeps only the newest frame: when the pipeline is slower than the camera, stale frames are
  dropped (and counted) instead of queueing up latency. Timestamps are the wall clock at grab.
  A camera that stops delivering is closed and reopened with exponential backoff; the gap is
  logged when it comes back.

Both kinds offer the same ``FrameSource`` interface: ``read(timeout) -> Frame | None``.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import Frame

log = logging.getLogger("snapseal.capture")

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class SourceSpec:
    """What a ``--source`` string names."""

    kind: str  # "device" | "stream" | "file"
    target: int | str  # device index, device path, URL or file path

    @property
    def is_live(self) -> bool:
        return self.kind != "file"

    def describe(self) -> str:
        # A URL may carry credentials (rtsp://user:pass@host): never log them.
        if self.kind == "stream" and "@" in str(self.target):
            scheme, rest = str(self.target).split("://", 1)
            return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return str(self.target)


def parse_source(text: str) -> SourceSpec:
    text = text.strip()
    if text.isdigit():
        return SourceSpec("device", int(text))
    if text.startswith("/dev/"):
        return SourceSpec("device", text)
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceSpec("stream", text)
    return SourceSpec("file", str(Path(text).expanduser()))


def quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's own console chatter out of our one-line errors and logs:
    a failed open is reported by us, once, in the log format the user chose."""
    import os

    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when a capture opens
    utils_logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if utils_logging is not None:
        utils_logging.setLogLevel(utils_logging.LOG_LEVEL_ERROR)
    elif hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(2)  # errors only (OpenCV's LOG_LEVEL_ERROR)


def open_video_capture(spec: SourceSpec) -> Any:
    """The real OpenCV capture for a source (tests inject a fake instead)."""
    import cv2

    quiet_opencv()

    if spec.kind == "device":
        match = re.fullmatch(r"/dev/video(\d+)", str(spec.target))
        if isinstance(spec.target, int) or match:  # by index: what every OpenCV build's V4L2 takes
            return cv2.VideoCapture(int(spec.target) if isinstance(spec.target, int) else int(match.group(1)), cv2.CAP_V4L2)
        return cv2.VideoCapture(str(spec.target), cv2.CAP_V4L2)  # a udev symlink (/dev/v4l/by-id/...)
    if spec.kind == "stream":
        return cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG)
    return cv2.VideoCapture(str(spec.target))


CaptureFactory = Callable[[SourceSpec], Any]

STILL_IMAGE_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"BM", "BMP"), (b"GIF8", "GIF"),
                     (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))
STILL_IMAGE_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF", ".webp": "WebP",
                        ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PGM"}


def still_image_kind(path: Path) -> str | None:
    """'JPEG', 'PNG', ... when ``path`` is a photo (by its first bytes or its suffix), else None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        head = b""
    for magic, kind in STILL_IMAGE_MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return STILL_IMAGE_SUFFIXES.get(path.suffix.lower())


def read_video_frames(path: str | Path) -> Iterator[Any]:
    """Every frame of a video file, in order (BGR arrays): for offline tools (evaluation, tracker
    measurement, estimator research), not the daemon's loop, which reads through ``FileSource``."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


@dataclass
class CaptureStats:
    frames_read: int = 0  # frames grabbed from the source
    frames_delivered: int = 0  # frames handed to the pipeline
    frames_dropped: int = 0  # grabbed but replaced by a newer frame before the pipeline took it
    reopen_attempts: int = 0
    reconnects: int = 0
    gaps_s: list[float] = field(default_factory=list)  # how long each outage lasted
    truncated: bool = False  # a file ended well before the frame count its container states

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames_read": self.frames_read,
            "frames_delivered": self.frames_delivered,
            "frames_dropped": self.frames_dropped,
            "reopen_attempts": self.reopen_attempts,
            "reconnects": self.reconnects,
            "gap_total_s": round(sum(self.gaps_s), 3),
            "truncated": self.truncated,
        }


class FrameSource(Protocol):
    spec: SourceSpec
    stats: CaptureStats

    def read(self, timeout: float = 0.5) -> Frame | None:
        """The next frame, or None when none arrived within ``timeout`` (or the source ended)."""
        ...

    @property
    def ended(self) -> bool:
        """True once a file source is exhausted or the source was closed."""
        ...

    def close(self) -> None: ...


def _opened(capture: Any) -> bool:
    try:
        return bool(capture is not None and capture.isOpened())
    except Exception:  # noqa: BLE001 - a broken backend counts as closed
        return False


_END = object()  # the reader thread's last queue item: the file has no more frames


class FileSource:
    """A video file, every frame in order; timestamps from the file position.

    A reader thread decodes up to ``read_ahead`` frames ahead (cv2 releases the GIL while it
    decodes), so decoding overlaps detection instead of adding to it. Order, frames and
    timestamps are those of reading inline; nothing is dropped."""

    def __init__(self, spec: SourceSpec, capture_factory: CaptureFactory = open_video_capture,
                 start_time: float | None = None, realtime: bool = False, read_ahead: int = 4) -> None:
        self.spec = spec
        self.realtime = realtime  # pace frames at the file's own rate, like a camera
        self.stats = CaptureStats()
        path = Path(str(spec.target))
        if not path.is_file():
            raise SnapsealError(f"video source {path} does not exist or is not a file")
        still = still_image_kind(path)
        if still:
            raise SnapsealError(f"video source {path} is a still image ({still}), not a video: give a video file, "
                                f"a camera (0, /dev/videoN) or a stream URL")
        self._capture = capture_factory(spec)
        if not _opened(self._capture):
            raise SnapsealError(f"video source {path} cannot be opened as a video")
        ok, image = self._capture.read()
        if not ok or image is None:
            self._capture.release()
            raise SnapsealError(f"video source {path} has no readable frames")
        self._start = time.time() if start_time is None else start_time
        try:
            count = float(self._capture.get(7) or 0.0)  # cv2.CAP_PROP_FRAME_COUNT (from the container)
        except Exception:  # noqa: BLE001 - a backend without it
            count = 0.0
        self.expected_frames = int(count) if 0 < count < 1e9 else None
        self.read_error = False
        fps = float(self._capture.get(5) or 0.0)  # cv2.CAP_PROP_FPS
        self.fps = fps if 0.0 < fps < 1000.0 else 25.0
        self._ended = False
        self._index = 0
        self._last_offset = -1.0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, read_ahead))
        self._queue.put((image, self._offset_s(0)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reader, name="snapseal-file-reader", daemon=True)
        self._thread.start()

    def _offset_s(self, index: int) -> float:
        # POS_MSEC after a read is the decoded frame's time; some backends report 0 or run
        # backwards: then fall back to index / fps so timestamps stay strictly increasing.
        pos_ms = float(self._capture.get(0) or 0.0)  # cv2.CAP_PROP_POS_MSEC
        offset = pos_ms / 1000.0
        if offset <= self._last_offset or (index > 0 and offset == 0.0):
            offset = max(index / self.fps, self._last_offset + 1e-6)
        self._last_offset = offset
        return offset

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _reader(self) -> None:
        # the only thread that touches the capture after __init__ (cv2 captures are not thread-safe)
        index = 1
        try:
            while not self._stop.is_set():
                try:
                    ok, image = self._capture.read()
                except Exception:  # noqa: BLE001 - a decoder error ends the file like EOF does
                    log.warning("video source %s: read failed after %d frames", self.spec.describe(), index)
                    self.read_error = True
                    ok, image = False, None
                if not ok or image is None:
                    self._warn_if_short(index)
                    break
                if not self._put((image, self._offset_s(index))):
                    return
                index += 1
        finally:
            self._capture.release()
            self._put(_END)

    def _warn_if_short(self, frames: int) -> None:
        """The container said how many frames the file has; far fewer decoded: it is damaged."""
        expected = self.expected_frames
        if expected and frames < expected - max(2, expected // 100):
            self.truncated = self.stats.truncated = True
            log.warning("video source %s ended after %d of its %d frames: the rest does not decode (file damaged "
                        "or cut short)", self.spec.describe(), frames, expected,
                        extra={"fields": {"event": "video_truncated", "frames": frames, "expected_frames": expected}})

    truncated = False

    def waiting_for(self) -> str | None:
        return None

    def read(self, timeout: float = 0.5) -> Frame | None:
        if self._ended:
            return None
        while True:
            try:
                item = self._queue.get(timeout=timeout)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    item = _END  # the reader died without its end marker
                    break
        if item is _END:
            self._ended = True
            return None
        image, offset = item
        frame = Frame(image_bgr=image, timestamp=self._start + offset, index=self._index)
        if self.realtime:
            delay = frame.timestamp - time.time()
            if delay > 0:
                time.sleep(min(delay, timeout))
        self._index += 1
        self.stats.frames_read += 1
        self.stats.frames_delivered += 1
        return frame

    @property
    def ended(self) -> bool:
        return self._ended

    def close(self) -> None:
        self._ended = True
        self._stop.set()
        self._thread.join(timeout=5.0)


class LiveSource:
    """A camera or stream read by a thread that keeps only the newest frame.

    ``failures_before_reopen`` consecutive failed reads close the capture; reopening waits
    ``backoff_initial_s`` and doubles up to ``backoff_max_s``.
    """

    def __init__(self, spec: SourceSpec, capture_factory: CaptureFactory = open_video_capture,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 failures_before_reopen: int = 3, clock: Callable[[], float] = time.time,
                 wait_at_start: bool = False) -> None:
        self.spec = spec
        self.stats = CaptureStats()
        self.backoff_delays_s: list[float] = []  # every wait before a reopen attempt, for tests and logs
        self._factory = capture_factory
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._failures_before_reopen = failures_before_reopen
        self._clock = clock
        self._capture = capture_factory(spec)
        self._gap_started: float | None = None
        if not _opened(self._capture):
            if not wait_at_start:
                raise SnapsealError(f"camera source {spec.describe()} cannot be opened")
            # At boot the camera may come up after the service: wait for it with the same backoff
            # as a camera lost later (the watchdog is pinged meanwhile; STATUS says we wait).
            if self._capture is not None:
                self._capture.release()
            self._capture = None
            self._gap_started = clock()
            log.warning("camera %s is not available at start; waiting for it (reopen with backoff up to %.0f s)",
                        spec.describe(), backoff_max_s)
        self._condition = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._index = 0
        self._thread = threading.Thread(target=self._reader, name="snapseal-capture", daemon=True)
        self._thread.start()

    def waiting_for(self) -> str | None:
        """The camera's name while it is closed and being reopened with backoff, else None."""
        return self.spec.describe() if self._capture is None and not self._stop.is_set() else None

    def _reader(self) -> None:
        failures = 0
        backoff = self._backoff_initial
        gap_started: float | None = self._gap_started
        while not self._stop.is_set():
            if self._capture is None:
                self.backoff_delays_s.append(backoff)
                if self._stop.wait(backoff):
                    break
                self.stats.reopen_attempts += 1
                capture = self._factory(self.spec)
                if _opened(capture):
                    self._capture = capture
                    gap = self._clock() - (gap_started or self._clock())
                    self.stats.reconnects += 1
                    self.stats.gaps_s.append(gap)
                    log.warning("camera %s is back after a gap of %.1f s (%d reopen attempts)",
                                self.spec.describe(), gap, self.stats.reopen_attempts)
                    gap_started = None
                    backoff = self._backoff_initial
                else:
                    if capture is not None:
                        capture.release()
                    backoff = min(backoff * 2.0, self._backoff_max)
                continue
            try:
                ok, image = self._capture.read()
            except Exception:  # noqa: BLE001 - a driver error is a failed read
                ok, image = False, None
            if not ok or image is None:
                failures += 1
                if failures >= self._failures_before_reopen:
                    log.warning("camera %s stopped delivering frames; reopening with backoff", self.spec.describe())
                    self._capture.release()
                    self._capture = None
                    gap_started = self._clock()
                    failures = 0
                continue
            failures = 0
            frame = Frame(image_bgr=image, timestamp=self._clock(), index=self._index)
            self._index += 1
            with self._condition:
                self.stats.frames_read += 1
                if self._latest is not None:
                    self.stats.frames_dropped += 1
                self._latest = frame
                self._condition.notify()
        if self._capture is not None:
            self._capture.release()

    def read(self, timeout: float = 0.5) -> Frame | None:
        with self._condition:
            if self._latest is None:
                self._condition.wait(timeout)
            frame, self._latest = self._latest, None
            if frame is not None:
                self.stats.frames_delivered += 1
            return frame

    @property
    def ended(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def open_source(text: str, capture_factory: CaptureFactory = open_video_capture,
                reconnect_max_s: float = 30.0, realtime: bool = False, wait_at_start: bool = True) -> FileSource | LiveSource:
    """Open a ``--source`` string; an unreadable file is a one-line ``SnapsealError``. A camera or
    stream that is not there yet is waited for (``wait_at_start``), as one lost later is."""
    spec = parse_source(text)
    if spec.is_live:
        return LiveSource(spec, capture_factory, backoff_max_s=reconnect_max_s, wait_at_start=wait_at_start)
    return FileSource(spec, capture_factory, realtime=realtime)
