"""The daemon as a service: logs, systemd notify, signals, and building the pipeline from config.

- Logs are JSON lines (one object per line: ts, level, logger, msg, plus extra fields) or text,
  on stderr (journald stores them under systemd).
- systemd notify: ``READY=1`` once the source is open and the models are loaded,
  ``WATCHDOG=1`` every half of ``WATCHDOG_USEC``, ``STATUS=...`` about every 10 s, ``STOPPING=1``
  on shutdown — datagrams written straight to ``$NOTIFY_SOCKET`` with the socket module.
- SIGTERM / SIGINT set a stop event: capture stops, queued crops are scored, the best crop of
  every open track that met the minimum length is sealed, then the run returns (exit 0).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TextIO

from snapseal.daemon.choose import CropChooser, TrackChoice
from snapseal.daemon.config import Config, require
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.pipeline import Pipeline, RunSummary
from snapseal.daemon.scoring.base import warm_up

log = logging.getLogger("snapseal.service")

STATUS_EVERY_S = 10.0


# ---------------------------------------------------------------- logs


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line; fields passed with ``extra={"fields": {...}}`` are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, sort_keys=False)


def configure_logging(log_format: str = "json", stream: TextIO | None = None, level: int = logging.INFO) -> logging.Handler:
    """Route the ``snapseal`` loggers to ``stream`` (stderr) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("snapseal")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler


# ---------------------------------------------------------------- systemd notify


class SystemdNotifier:
    """sd_notify without libsystemd: datagrams to ``$NOTIFY_SOCKET`` (path or @abstract)."""

    def __init__(self, environ: dict[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        environ = dict(os.environ if environ is None else environ)
        self._clock = clock
        self.address: str | None = environ.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]  # Linux abstract namespace
        self.watchdog_interval_s: float | None = None
        usec = environ.get("WATCHDOG_USEC")
        pid = environ.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 1e6 / 2.0
        self._next_watchdog = 0.0
        self._next_status = 0.0
        self._socket: socket.socket | None = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, **fields: Any) -> bool:
        """Send ``KEY=value`` lines (READY=1, STATUS=...). False when not under systemd."""
        if self._socket is None or self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode("utf-8")
        try:
            self._socket.sendto(message, self.address)
            return True
        except OSError as error:
            log.warning("systemd notify failed: %s", error)
            return False

    def ready(self, status: str) -> None:
        self.notify(READY=1, STATUS=status)

    def tick(self, status: Callable[[], str]) -> None:
        """Called from the processing loop: a hung loop stops the pings, and systemd restarts us."""
        now = self._clock()
        if self.watchdog_interval_s is not None and now >= self._next_watchdog:
            self.notify(WATCHDOG=1)
            self._next_watchdog = now + self.watchdog_interval_s
        if now >= self._next_status:
            self.notify(STATUS=status())
            # With a short watchdog the status follows it, so a supervisor sees fresh numbers.
            self._next_status = now + min(STATUS_EVERY_S, self.watchdog_interval_s or STATUS_EVERY_S)

    def stopping(self, status: str) -> None:
        self.notify(STOPPING=1, STATUS=status)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


# ---------------------------------------------------------------- signals


@contextmanager
def stop_on_signals(stop: threading.Event, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[threading.Event]:
    """SIGTERM/SIGINT set ``stop`` (the loop finishes its tracks and returns); handlers restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            log.warning("signal %d again: still sealing open tracks", signum)
        else:
            log.info("signal %d: stopping capture, sealing the best crop of every open track", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------- sealing sink


class SealingSink:
    """Seals each chosen track into one record (best crop; top-k extras and clip inside it).

    The store refuses rather than evicts when full (store.py): a refused record stays here,
    sealed, and is retried after each purge; at most ``max_pending`` are held (then the oldest
    pending record is dropped with an error in the log).
    """

    def __init__(self, sealer: Any, store: Any, model_id: str, max_pending: int = 256) -> None:
        self.sealer = sealer  # seal.RecordSealer
        self.store = store  # store.RecordStore
        self.model_id = model_id
        self.max_pending = max_pending
        self.pending: list[bytes] = []  # sealed records the store refused for now

    def write(self, choice: TrackChoice) -> list[str]:
        from snapseal.daemon.seal import CropMeta, SealedImage, parse_header

        best = choice.best
        meta = CropMeta.from_scored(best, track_id=choice.track.track_id, model_id=self.model_id)
        extras = [SealedImage.from_scored(scored, role="extra") for scored in choice.kept[1:]]
        extras += [SealedImage(pixels=crop.pixels, frame_time=crop.timestamp, role="clip", box=crop.detection.box)
                   for crop in choice.clip]
        record = self.sealer.seal(best.crop.pixels, meta, extras=extras)
        self._store(record)
        return [parse_header(record).record_id]

    def _store(self, record: bytes) -> bool:
        from snapseal.daemon.store import StoreFullError, StoreWriteError

        try:
            self.store.write(record)
            return True
        except (StoreFullError, StoreWriteError) as error:
            if isinstance(error, StoreWriteError) and not error.retryable:
                raise
            self.pending.append(record)
            if len(self.pending) > self.max_pending:
                self.pending.pop(0)
                log.error("dropped a sealed record: more than %d waiting for store space", self.max_pending)
            log.error("%s (kept in memory, %d waiting)", error, len(self.pending))
            return False

    def purge_expired(self) -> int:
        purged = len(self.store.purge_expired())
        waiting, self.pending = self.pending, []
        for index, record in enumerate(waiting):
            if not self._store(record):
                self.pending.extend(waiting[index + 1:])
                break
        return purged

    def close(self) -> None:
        if self.pending:
            self.purge_expired()
        if self.pending:
            log.error("%d sealed record(s) could not be stored (store full) and are lost", len(self.pending))


# ---------------------------------------------------------------- building and running


def load_device_key(config: Config, ephemeral: bool) -> Any:
    """The camera's signing key, or a throwaway one when ``ephemeral`` (demo/testing only)."""
    from snapseal.daemon.keys import DeviceKeyPair, load_device_signing

    if config.keys.device_key is not None:
        return load_device_signing(config.keys.device_key)
    if ephemeral:
        return DeviceKeyPair.generate()  # build_pipeline warns once everything else is in place
    raise SnapsealError("missing [keys] device_key: pass --device-key FILE (make one with "
                        "`snapseal keygen --device --out DIR`) or --ephemeral-device-key for a test run")


@dataclass
class BuiltPipeline:
    pipeline: Pipeline
    describe: str  # one line for logs and the READY status


def build_pipeline(config: Config, ephemeral_device_key: bool = False, source: Any = None,
                   detector: Any = None, scorer: Any = None,
                   on_scored: Callable[[int, Any], None] | None = None,
                   on_choice: Callable[[TrackChoice, list[str]], None] | None = None,
                   background_scoring: bool = True) -> BuiltPipeline:
    """Every stage from the config. ``source``/``detector``/``scorer`` may be passed in (tests, bench).

    The scorer is warmed up (sessions built) before the pipeline exists, and crops are scored on
    the chooser's worker thread, overlapping the next frame's detection; ``background_scoring=
    False`` scores inline in the frame loop (same results; the benchmark compares the two)."""
    from snapseal.daemon.capture import open_source
    from snapseal.daemon.crop import make_face_crop
    from snapseal.daemon.keys import load_investigator_public
    from snapseal.daemon.seal import RecordSealer
    from snapseal.daemon.store import RecordStore
    from snapseal.daemon.track import make_tracker

    recipient_path = require(config, "keys.recipient", "--recipient")
    store_dir = require(config, "store.dir", "--store")
    recipient = load_investigator_public(recipient_path)
    device_key = load_device_key(config, ephemeral_device_key)
    store = RecordStore(store_dir, quota_bytes=int(config.store.quota_mb * 1024 * 1024))
    sealer = RecordSealer(recipient, device_key, camera_id=config.camera.camera_id,
                          retention=config.store.retention_days * 86400.0)
    # Cheap checks first (keys, store, source), then the slow loads (scorer, detector).
    if source is None:
        source = open_source(config.camera.source, reconnect_max_s=config.camera.reconnect_max_s,
                             realtime=config.camera.realtime)
    try:
        if scorer is None:
            from snapseal.daemon.scoring import load_scorer

            scorer = load_scorer(config.quality.bundle, backend=config.quality.backend, scorer=config.quality.scorer_name)
        warm_up(scorer)
        if detector is None:
            from snapseal.daemon.detect import make_detector

            detector = make_detector(min_face_px=config.detector.min_face_px, confidence=config.detector.confidence)
    except BaseException:
        source.close()
        raise
    tracker = make_tracker(config.tracker.kind, config.tracker.max_age_frames, config.tracker.min_length_frames)
    chooser = CropChooser(scorer, top_k=config.quality.top_k, clip_frames=config.quality.clip_frames,
                          batch_size=config.quality.batch_size, on_scored=on_scored, background=background_scoring)

    def cropper(frame, detection):
        return make_face_crop(frame, detection)

    pipeline = Pipeline(source, detector, tracker, cropper, chooser,
                        SealingSink(sealer, store, model_id=scorer.model_id),
                        purge_interval_s=config.store.purge_interval_min * 60.0, on_choice=on_choice)
    if config.keys.device_key is None:
        log.warning("using an ephemeral device key %s: records cannot be tied to a known camera", device_key.key_id)
    describe = (f"camera {config.camera.camera_id} source {source.spec.describe()} detector {detector.name} "
                f"tracker {tracker.name} scorer {scorer.name} ({scorer.model_id}) backend {config.quality.backend} "
                f"store {store_dir} recipient {recipient.key_id} device {device_key.key_id}")
    return BuiltPipeline(pipeline, describe)


def status_line(summary: RunSummary) -> str:
    return (f"{summary.frames} frames, {summary.fps:.1f} fps, {len(summary.sealed_tracks())} tracks sealed, "
            f"{summary.records_written} records")


def run_service(built: BuiltPipeline, stop: threading.Event | None = None,
                notifier: SystemdNotifier | None = None) -> RunSummary:
    """Run until the source ends or a signal arrives; systemd hears READY, WATCHDOG, STATUS."""
    stop = stop or threading.Event()
    notifier = notifier or SystemdNotifier()
    pipeline = built.pipeline
    previous_tick = pipeline.on_tick

    def tick(summary: RunSummary) -> None:
        notifier.tick(lambda: status_line(summary))
        if previous_tick is not None:
            previous_tick(summary)

    pipeline.on_tick = tick
    try:
        with stop_on_signals(stop):  # before READY: a supervisor may stop us right after it
            log.info("snapseal running: %s", built.describe)
            notifier.ready(f"running: {built.describe}")
            summary = pipeline.run(stop)
    finally:
        notifier.stopping("stopping: sealed open tracks")
        notifier.close()
    log.info("snapseal stopped: %s", status_line(summary),
             extra={"fields": {"summary": {k: v for k, v in summary.as_dict().items() if k != "tracks"}}})
    return summary
