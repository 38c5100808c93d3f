"""The pipeline: capture -> detect -> track -> crop -> score -> choose -> seal -> store.

``Pipeline`` only wires stages that were built elsewhere (``service.build_pipeline`` builds them
from the config), so each stage can be swapped or faked in tests. It times every stage, purges
expired records every few minutes while running, and on stop (end of a file, or a stop event
set by SIGTERM) stops capturing, scores what is queued, seals the best crop of every open track
that met the minimum length, and returns a per-track summary.

Scoring may run on the chooser's worker thread (``CropChooser(background=True)``, what the
daemon builds): then the "score" stage is the time this loop spent waiting for scores (back-
pressure, a track ending before its crops were scored), so the stages still add up to the
run's time, and ``RunSummary.score_busy_ms_per_frame`` is the scorer's own busy time beside it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from snapseal.daemon.capture import FrameSource
from snapseal.daemon.choose import CropChooser, TrackChoice
from snapseal.daemon.detect.base import Detector
from snapseal.daemon.detect.schedule import DetectionSchedule
from snapseal.daemon.scoring.dedupe import NearDuplicateFilter
from snapseal.daemon.track import TrackInfo, Tracker
from snapseal.daemon.types import Detection, FaceCrop, Frame

log = logging.getLogger("snapseal.pipeline")

STAGES = ("capture", "detect", "track", "crop", "score", "choose", "seal")

Cropper = Callable[[Frame, Detection], "FaceCrop | None"]


class RecordSink(Protocol):
    """Where chosen crops go: sealed and stored (``sink.SealingSink``), or a test double."""

    def write(self, choice: TrackChoice) -> list[str]:
        """Seal and store one finished track; returns the record id(s) written."""
        ...

    def purge_expired(self) -> int:
        """Delete expired records; returns how many went."""
        ...


@dataclass
class StageTimes:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, stage: str, elapsed: float) -> None:
        self.seconds[stage] += elapsed

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        return {stage: 1000.0 * self.seconds.get(stage, 0.0) / max(frames, 1) for stage in STAGES}


@dataclass(frozen=True)
class TrackSummary:
    track_id: int
    frames: int  # frames with a detection of this track
    first_frame: int
    last_frame: int
    best_score: float | None
    best_frame: int | None
    record_ids: list[str]
    sealed: bool
    reason: str = ""  # why nothing was sealed ("too short", "no crop", "seal failed")


@dataclass
class RunSummary:
    frames: int = 0
    seconds: float = 0.0
    detections: int = 0
    stage_ms_per_frame: dict[str, float] = field(default_factory=dict)
    score_busy_ms_per_frame: float = 0.0  # the scorer's busy time (on the worker: overlaps the stages)
    capture: dict[str, Any] = field(default_factory=dict)
    tracks: list[TrackSummary] = field(default_factory=list)
    records_written: int = 0  # sealed (stored, or still queued for the store)
    records_stored: int = 0  # on disk at the end
    records_queued: int = 0  # still waiting for store space at the end
    records_lost: int = 0  # sealed but never stored, or never sealed (no period key): the exit code says so
    records_purged: int = 0
    stopped_by_signal: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def sealed_tracks(self) -> list[TrackSummary]:
        return [t for t in self.tracks if t.sealed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames, "seconds": round(self.seconds, 3), "fps": round(self.fps, 2),
            "detections": self.detections, "records_written": self.records_written,
            "records_stored": self.records_stored, "records_queued": self.records_queued,
            "records_lost": self.records_lost, "records_purged": self.records_purged, "stopped_by_signal": self.stopped_by_signal,
            "stage_ms_per_frame": {k: round(v, 3) for k, v in self.stage_ms_per_frame.items()},
            "score_busy_ms_per_frame": round(self.score_busy_ms_per_frame, 3),
            "capture": self.capture,
            "tracks": [t.__dict__ for t in self.tracks],
        }


class Pipeline:
    def __init__(self, source: FrameSource, detector: Detector, tracker: Tracker, cropper: Cropper,
                 chooser: CropChooser, sink: RecordSink, purge_interval_s: float = 600.0,
                 on_tick: Callable[[RunSummary], None] | None = None,
                 on_choice: Callable[[TrackChoice, list[str]], None] | None = None,
                 schedule: DetectionSchedule | None = None,
                 crop_filter: NearDuplicateFilter | None = None) -> None:
        self.source = source
        self.detector = detector
        # Which frames get a full detection (default: all); between them O-Net alone on the
        # tracker's predicted boxes (daemon/detect/schedule.py).
        self.schedule = schedule if schedule is not None else DetectionSchedule(detector)
        self.crop_filter = crop_filter  # None: every crop is scored (daemon/scoring/dedupe.py)
        self.tracker = tracker
        self.cropper = cropper
        self.chooser = chooser
        self.sink = sink
        self.purge_interval_s = purge_interval_s
        self.on_tick = on_tick  # called about once a loop turn: watchdog pings, status
        self.on_choice = on_choice  # sees every sealed track (the demo draws it)
        self.times = StageTimes()
        self.summary = RunSummary()

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        stop = stop or threading.Event()
        started = time.perf_counter()
        next_purge = time.monotonic()  # purge once at start: a restarted camera catches up
        try:
            while not stop.is_set():
                if time.monotonic() >= next_purge:
                    self._purge()
                    next_purge = time.monotonic() + self.purge_interval_s
                t0 = time.perf_counter()
                frame = self.source.read(timeout=0.5)
                self.times.add("capture", time.perf_counter() - t0)
                if frame is None:
                    if self.source.ended:
                        break
                    self._tick(started)
                    continue
                self._process(frame)
                self._tick(started)
            self.summary.stopped_by_signal = stop.is_set()
        finally:
            # Stop capturing first, then decide every open track: nothing that met the minimum
            # length is lost on shutdown.
            self.source.close()
            try:
                for info in self.tracker.finish():
                    self._finish_track(info)
            finally:
                self._choose(self.chooser.close)  # every score collected, the worker thread stopped
            close_sink = getattr(self.sink, "close", None)
            if close_sink is not None:
                close_sink()
            self.summary.seconds = time.perf_counter() - started
            self.summary.stage_ms_per_frame = self.times.per_frame_ms(self.summary.frames)
            self.summary.score_busy_ms_per_frame = 1000.0 * self.chooser.stats.score_seconds / max(self.summary.frames, 1)
            self.summary.capture = self.source.stats.as_dict()
            self.summary.tracks.sort(key=lambda t: t.track_id)
        return self.summary

    def _process(self, frame: Frame) -> None:
        self.summary.frames += 1
        t0 = time.perf_counter()
        detections = self.schedule.detect(frame.image_bgr, frame.index, self._predict)
        t1 = time.perf_counter()
        height, width = frame.image_bgr.shape[:2]
        step = self.tracker.update(detections, frame.index, (width, height))
        t2 = time.perf_counter()
        self.times.add("detect", t1 - t0)
        self.times.add("track", t2 - t1)
        self.summary.detections += len(detections)
        crops: list[tuple[int, FaceCrop]] = []
        for detection, track_id in zip(detections, step.track_ids):
            crop = self.cropper(frame, detection)
            if crop is not None and (self.crop_filter is None or self.crop_filter.keep(track_id, crop.pixels)):
                crops.append((track_id, crop))
        t3 = time.perf_counter()
        self.times.add("crop", t3 - t2)
        self._choose(lambda: [self.chooser.add(track_id, crop) for track_id, crop in crops])
        for info in step.ended:
            self._finish_track(info)

    def _predict(self, frame_index: int):
        """The tracker's predicted boxes for the schedule's in-between frames."""
        return self.tracker.predicted_tracks(frame_index, self.schedule.follow_frames)

    def _choose(self, work: Callable[[], Any]) -> Any:
        """Run chooser work; book scoring (inline, or waiting for the worker) under "score" and
        the rest under "choose"."""
        wait_before = self.chooser.stats.score_wait_seconds
        t0 = time.perf_counter()
        try:
            return work()
        finally:
            elapsed = time.perf_counter() - t0
            scored = self.chooser.stats.score_wait_seconds - wait_before
            self.times.add("score", scored)
            self.times.add("choose", elapsed - scored)

    def _finish_track(self, info: TrackInfo) -> None:
        if self.crop_filter is not None:
            self.crop_filter.end_track(info.track_id)
        choice = self._choose(lambda: self.chooser.end_track(info))
        if choice is None:
            if info.long_enough:
                self._record(info, None, [], "no crop")
            else:  # listed in the run summary with its reason, never dropped silently
                minimum = getattr(self.tracker, "min_length", None)
                self._record(info, None, [], f"too short: {info.hits} frame(s)"
                             + (f", {minimum} needed" if minimum else ""))
            return
        t0 = time.perf_counter()
        try:
            record_ids = self.sink.write(choice)
            reason = ""
        except Exception as error:  # noqa: BLE001 - one failed record must not stop the camera
            log.error("sealing track %d failed: %s", info.track_id, error)
            record_ids, reason = [], f"seal failed: {error}"
        self.times.add("seal", time.perf_counter() - t0)
        self.summary.records_written += len(record_ids)
        self._record(info, choice, record_ids, reason)
        if self.on_choice is not None and record_ids:
            self.on_choice(choice, record_ids)

    def _record(self, info: TrackInfo, choice: TrackChoice | None, record_ids: list[str], reason: str) -> None:
        best = choice.best if choice is not None else None
        summary = TrackSummary(
            track_id=info.track_id, frames=info.hits, first_frame=info.first_frame, last_frame=info.last_frame,
            best_score=best.score if best is not None else None,
            best_frame=best.crop.frame_index if best is not None else None,
            record_ids=record_ids, sealed=bool(record_ids), reason=reason,
        )
        self.summary.tracks.append(summary)
        log.info("track %d ended: %d frames, best score %s at frame %s, records %s%s", info.track_id, info.hits,
                 "n/a" if best is None else f"{best.score:.4g}", summary.best_frame, ",".join(record_ids) or "none",
                 f" ({reason})" if reason else "",
                 extra={"fields": {"event": "track_end", "track_id": info.track_id, "frames": info.hits,
                                   "best_score": summary.best_score, "best_frame": summary.best_frame,
                                   "record_ids": record_ids}})

    def _purge(self) -> None:
        try:
            purged = self.sink.purge_expired()
        except Exception as error:  # noqa: BLE001 - a failed purge is retried next interval
            log.error("purging expired records failed: %s", error)
            return
        self.summary.records_purged += purged
        if purged:
            log.info("purged %d expired record(s)", purged)

    def _tick(self, started: float) -> None:
        if self.on_tick is not None:
            self.summary.seconds = time.perf_counter() - started
            self.on_tick(self.summary)


def format_track_table(tracks: Sequence[TrackSummary]) -> str:
    """The per-track summary printed at the end of a run."""
    lines = [f"{'track':>5}  {'frames':>6}  {'best score':>11}  {'best frame':>10}  record"]
    for track in tracks:
        score = "-" if track.best_score is None else f"{track.best_score:.4g}"
        frame = "-" if track.best_frame is None else str(track.best_frame)
        record = ",".join(track.record_ids) if track.record_ids else f"- ({track.reason})"
        lines.append(f"{track.track_id:>5}  {track.frames:>6}  {score:>11}  {frame:>10}  {record}")
    return "\n".join(lines)
