"""The pipeline's output stage: seal each chosen track into one record and hand it to the store,
so that nobody is lost to a full disk, a read-only remount or a power cut.

- **Provisional records.** Once a track has met the minimum length, its best crop so far is
  sealed as a *provisional* record (``provisional: true`` in the signed metadata) and stored; a
  better crop later replaces it atomically (same record id and sequence, ``os.replace``), at
  most once every ``provisional_interval_s`` per track; when the track ends the final record
  (top-k extras, clip, evidence) replaces it the same way. So a kill or a power cut leaves every
  person who was in view long enough with exactly one record, and a track never has two.
- **Nothing dropped silently.** A record the store refuses (quota, ENOSPC/EDQUOT, EROFS, EPERM,
  EACCES, EIO; ENOENT after the store re-creates a deleted directory) stays queued in memory,
  sealed (bounded: ``max_pending`` records and ``max_pending_bytes``), and is retried with
  backoff from ``tick()`` and after every purge; a newer revision of the same record replaces its
  queued one. What is finally lost (queue overflow, seal failure, still queued at shutdown
  without a provisional on disk) is counted, logged as an error, and in ``stats`` (the run
  summary, systemd STATUS and the exit code read it).
- The per-device sequence number (daemon/records/store.py ``StoreSequence``) is given to each
  track once, so a gap that `snapseal verify` reports is a record that went missing.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from snapseal.daemon.choose import TrackChoice

log = logging.getLogger("snapseal.service")

DEFAULT_PROVISIONAL_INTERVAL_S = 5.0
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 30.0


@dataclass
class SinkStats:
    records_sealed: int = 0  # final records sealed (stored or queued)
    records_stored: int = 0  # final records on disk
    provisional_written: int = 0  # provisional records stored (first ones and replacements)
    records_lost: int = 0  # people whose record is on no disk (neither final nor provisional)
    finals_lost_provisional_kept: int = 0  # the final could not be stored; the provisional stays
    superseded_in_queue: int = 0  # a queued revision replaced by a newer one of the same record
    write_failures: int = 0  # store refusals (each queued and retried)
    retries: int = 0
    bytes_written: int = 0
    lost_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}


@dataclass
class _Track:
    record_id: str
    sequence: int
    best: Any = None  # ScoredCrop
    best_rank: float = -math.inf
    dirty: bool = False  # a better crop than the stored provisional one
    written_at: float | None = None  # monotonic time of the last provisional write
    on_disk: bool = False  # some revision of this record is stored


def _rank(chooser: Any, scored: Any) -> float:
    """The chooser's own ranking of a scored crop (daemon/choose.py: non-finite scores lowest)."""
    if not math.isfinite(scored.score):
        return -math.inf
    ranker = getattr(chooser, "ranker", None)
    if ranker is None:
        return float(scored.score)
    from snapseal.daemon.scoring.chooser import finite_rank

    return float(finite_rank(ranker(scored)))


class SealingSink:
    """Seals each chosen track into one record (best crop; top-k extras, clip and evidence inside).

    ``attach(chooser, tracker)`` turns on provisional records (the service does it); without it
    the sink seals only finished tracks, as the pipeline hands them over."""

    def __init__(self, sealer: Any, store: Any, model_id: str, max_pending: int = 256,
                 max_pending_bytes: int = 64 * 1024 * 1024, provisional_interval_s: float = DEFAULT_PROVISIONAL_INTERVAL_S,
                 sequence: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.sealer = sealer  # seal.RecordSealer
        self.store = store  # store.RecordStore
        self.model_id = model_id
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.provisional_interval_s = provisional_interval_s
        self.clock = clock
        self.pending: list[bytes] = []  # sealed records the store refused for now, oldest first
        self.stats = SinkStats()
        self.chooser: Any = None
        self.tracker: Any = None
        self._tracks: dict[int, _Track] = {}
        self._provisional_ids: set[str] = set()  # record ids that may have a provisional revision on disk
        self._finals: set[str] = set()  # final records sealed and not yet stored
        self._retry_at = 0.0
        self._retry_delay = RETRY_INITIAL_S
        self.sequence = sequence
        if self.sequence is None and getattr(sealer, "sequencer", "absent") is None and hasattr(store, "directory"):
            from snapseal.daemon.records.store import StoreSequence

            self.sequence = StoreSequence(store.directory, sealer.device_key.key_id)
        if self.sequence is not None and getattr(sealer, "sequencer", "absent") is None:
            sealer.sequencer = self.sequence
        if getattr(store, "retention_s", "absent") is None and hasattr(sealer, "retention_seconds"):
            store.retention_s = sealer.retention_seconds  # purge files that do not verify by age

    # ------------------------------------------------------------ provisional records

    def attach(self, chooser: Any, tracker: Any) -> None:
        """See every scored crop (chained before the chooser's own ``on_scored``) and the open
        tracks, so ``tick()`` can keep a provisional record of each long-enough track."""
        self.chooser, self.tracker = chooser, tracker
        previous = chooser.on_scored

        def on_scored(track_id: int, scored: Any) -> None:
            self.observe(track_id, scored)
            if previous is not None:
                previous(track_id, scored)

        chooser.on_scored = on_scored

    def observe(self, track_id: int, scored: Any) -> None:
        rank = _rank(self.chooser, scored)
        state = self._tracks.get(track_id)
        if state is None:
            state = self._tracks[track_id] = _Track(record_id="", sequence=0)
        if state.best is None or rank > state.best_rank:  # ties: the earlier crop stays, as in the chooser
            state.best, state.best_rank, state.dirty = scored, rank, True

    def tick(self) -> None:
        """From the pipeline loop: write due provisional records, retry queued ones."""
        now = self.clock()
        if self.tracker is not None:
            open_tracks = {info.track_id: info for info in self.tracker.open_tracks()}
            for track_id in [t for t in self._tracks if t not in open_tracks]:
                state = self._tracks.pop(track_id)  # ended too short (or already final): nothing kept
                del state
            for track_id, info in open_tracks.items():
                state = self._tracks.get(track_id)
                if state is None or state.best is None or not state.dirty or not info.long_enough:
                    continue
                if state.written_at is not None and now - state.written_at < self.provisional_interval_s:
                    continue
                self._write_provisional(track_id, state, now)
        if self.pending and now >= self._retry_at:
            self.retry_pending()

    def _write_provisional(self, track_id: int, state: _Track, now: float) -> None:
        from snapseal.daemon.records.seal import CropMeta

        if not state.record_id:
            state.record_id = os.urandom(16).hex()
            state.sequence = self.sequence() if self.sequence is not None else 0
        best = state.best
        meta = CropMeta.from_scored(best, track_id=track_id, model_id=self.model_id)
        try:
            record = self.sealer.seal(best.crop.pixels, meta, extras=self._evidence(best), record_id=state.record_id,
                                      sequence=state.sequence, provisional=True)
        except Exception as error:  # noqa: BLE001 - the final seal will be tried at track end
            log.error("sealing a provisional record of track %d failed: %s", track_id, error)
            state.written_at = now
            return
        state.dirty, state.written_at = False, now
        self._provisional_ids.add(state.record_id)
        if self._store(record, provisional=True):
            state.on_disk = True
            log.debug("provisional record %s of track %d stored", state.record_id, track_id,
                      extra={"fields": {"event": "provisional", "track_id": track_id, "record_id": state.record_id}})

    @staticmethod
    def _evidence(scored: Any) -> list:
        from snapseal.daemon.records.seal import SealedImage

        crop = scored.crop
        return [SealedImage.from_evidence(image, crop.timestamp) for image in getattr(crop, "evidence", ())]

    # ------------------------------------------------------------ final records

    def write(self, choice: TrackChoice) -> list[str]:
        from snapseal.daemon.records.layout import parse_header
        from snapseal.daemon.records.seal import CropMeta, SealedImage

        track_id = choice.track.track_id
        state = self._tracks.pop(track_id, None)
        if state is None or not state.record_id:
            record_id = os.urandom(16).hex()
            sequence = self.sequence() if self.sequence is not None else None
        else:
            record_id, sequence = state.record_id, state.sequence
        best = choice.best
        meta = CropMeta.from_scored(best, track_id=track_id, model_id=self.model_id)
        extras = [SealedImage.from_scored(scored, role="extra") for scored in choice.kept[1:]]
        extras += [SealedImage(pixels=crop.pixels, frame_time=crop.timestamp, role="clip", box=crop.detection.box)
                   for crop in choice.clip]
        extras += self._evidence(best)  # the colour cuts after the model crops
        try:
            record = self.sealer.seal(best.crop.pixels, meta, extras=extras, record_id=record_id, sequence=sequence)
        except Exception as error:
            if state is not None and state.on_disk:
                self.stats.finals_lost_provisional_kept += 1
                log.error("sealing track %d failed (%s); its provisional record %s stays", track_id, error, record_id)
            else:
                self._lose(f"track {track_id}: seal failed: {error}")
            raise
        self.stats.records_sealed += 1
        self._finals.add(record_id)
        if self._store(record, provisional=False):
            self._provisional_ids.discard(record_id)
        return [parse_header(record).record_id]

    # ------------------------------------------------------------ storing, queueing, retrying

    def _store(self, record: bytes, provisional: bool = False) -> bool:
        from snapseal.daemon.records.layout import parse_header
        from snapseal.daemon.records.store import StoreFullError, StoreWriteError

        record_id = parse_header(record).record_id
        try:
            self.store.write(record, replace=record_id in self._provisional_ids)
        except (StoreFullError, StoreWriteError) as error:
            self.stats.write_failures += 1
            self._enqueue(record, record_id)
            log.error("%s (sealed record kept in memory and retried; %d waiting)", error, len(self.pending),
                      extra={"fields": {"event": "store_refused", "record_id": record_id, "waiting": len(self.pending)}})
            return False
        except Exception as error:  # noqa: BLE001 - e.g. "already stored": it is on disk, nothing to retry
            log.error("storing record %s: %s", record_id, error)
            return False
        if record_id in self._finals:
            self._finals.discard(record_id)
            self.stats.records_stored += 1
        else:
            self.stats.provisional_written += 1
        self.stats.bytes_written += len(record)
        return True

    def _enqueue(self, record: bytes, record_id: str) -> None:
        from snapseal.daemon.records.layout import parse_header

        kept = [r for r in self.pending if parse_header(r).record_id != record_id]
        self.stats.superseded_in_queue += len(self.pending) - len(kept)
        kept.append(record)
        while len(kept) > self.max_pending or (len(kept) > 1 and sum(map(len, kept)) > self.max_pending_bytes):
            dropped = kept.pop(0)
            self._lose_queued(dropped, f"more than {self.max_pending} records / {self.max_pending_bytes} bytes "
                                       f"waiting for the store")
        self.pending = kept
        if self._retry_at <= self.clock():
            self._retry_at = self.clock() + self._retry_delay

    def _lose(self, why: str) -> None:
        self.stats.records_lost += 1
        self.stats.lost_reasons.append(why)
        log.error("record lost: %s (%d lost so far)", why, self.stats.records_lost,
                  extra={"fields": {"event": "record_lost", "records_lost": self.stats.records_lost}})

    def _lose_queued(self, record: bytes, why: str) -> None:
        from snapseal.daemon.records.layout import parse_header

        record_id = parse_header(record).record_id
        if record_id in self._provisional_ids and (self.store.directory / f"{record_id}.snap").exists():
            self.stats.finals_lost_provisional_kept += 1
            log.error("record %s could not be stored (%s); its provisional version stays", record_id, why)
        else:
            self._lose(f"record {record_id}: {why}")

    def retry_pending(self) -> int:
        """Try every queued record again, oldest first; returns how many were stored."""
        from snapseal.daemon.records.layout import parse_header

        stored = 0
        waiting, self.pending = self.pending, []
        for index, record in enumerate(waiting):
            self.stats.retries += 1
            record_id = parse_header(record).record_id
            before = len(self.pending)
            final = record_id in self._finals
            if self._store(record, provisional=not final):
                stored += 1
                if final:
                    self._provisional_ids.discard(record_id)
                continue
            if len(self.pending) > before:  # still refused: keep the rest in order, back off
                self.pending = self.pending + [r for r in waiting[index + 1:]]
                self._retry_delay = min(self._retry_delay * 2.0, RETRY_MAX_S)
                self._retry_at = self.clock() + self._retry_delay
                break
        else:
            self._retry_delay = RETRY_INITIAL_S
        if stored:
            log.info("stored %d queued record(s); %d still waiting", stored, len(self.pending))
        return stored

    def purge_expired(self) -> int:
        purged = len(self.store.purge_expired())
        if self.pending:
            self.retry_pending()
        return purged

    def close(self) -> None:
        if self.pending:
            self.retry_pending()
        for record in list(self.pending):
            self._lose_queued(record, "still waiting for the store at shutdown")
        self.pending = []
        if self.sequence is not None and hasattr(self.sequence, "save"):
            self.sequence.save()
        if self.stats.records_lost:
            log.error("%d record(s) could not be stored and are lost", self.stats.records_lost)

    def status(self) -> str:
        """For systemd STATUS and the run summary line."""
        text = f"{self.stats.records_stored} stored"
        if self.pending:
            text += f", {len(self.pending)} waiting for the store"
        if self.stats.records_lost:
            text += f", {self.stats.records_lost} LOST"
        return text
