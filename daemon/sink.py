"""The pipeline's output stage: seal each chosen track into one record and hand it to the store."""

from __future__ import annotations

import logging
from typing import Any

from snapseal.daemon.choose import TrackChoice

log = logging.getLogger("snapseal.service")


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
        from snapseal.daemon.records.layout import parse_header
        from snapseal.daemon.records.seal import CropMeta, SealedImage

        best = choice.best
        meta = CropMeta.from_scored(best, track_id=choice.track.track_id, model_id=self.model_id)
        extras = [SealedImage.from_scored(scored, role="extra") for scored in choice.kept[1:]]
        extras += [SealedImage(pixels=crop.pixels, frame_time=crop.timestamp, role="clip", box=crop.detection.box)
                   for crop in choice.clip]
        record = self.sealer.seal(best.crop.pixels, meta, extras=extras)
        self._store(record)
        return [parse_header(record).record_id]

    def _store(self, record: bytes) -> bool:
        from snapseal.daemon.records.store import StoreFullError, StoreWriteError

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
