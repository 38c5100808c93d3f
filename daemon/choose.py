"""Choose: keep the best crop(s) of every track, scoring crops in batches.

Crops from all tracks are queued and scored together when the queue holds ``batch_size`` crops
or when a track ends (so a finished track is decided at once). Per track only what can still
be kept stays in memory: the top-k scored crops and, for the optional clip, a short window of
recent crops — never the whole track.

The paper's rule: a track that lasted at least the minimum length always yields its best crop,
however poor. With ``top_k`` > 1 the k best are kept; with ``clip_frames`` = h > 0 the crops
up to h before and h after the best one are kept with it (the paper's generalization: a short
clip around the best frame, sealed together).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from snapseal.daemon.scoring.base import Scorer
from snapseal.daemon.track import TrackInfo
from snapseal.daemon.types import FaceCrop, ScoredCrop


@dataclass(frozen=True)
class TrackChoice:
    """What a finished track leaves behind: the crops to seal."""

    track: TrackInfo
    kept: list[ScoredCrop]  # best first; len <= top_k
    clip: list[FaceCrop]  # the crops around the best one, in frame order ([] without a clip)
    crops_scored: int

    @property
    def best(self) -> ScoredCrop:
        return self.kept[0]


@dataclass
class ChooserStats:
    crops_scored: int = 0
    batches: int = 0
    score_seconds: float = 0.0
    tracks_chosen: int = 0
    tracks_too_short: int = 0
    tracks_without_crops: int = 0


@dataclass
class _TrackCrops:
    next_seq: int = 0
    kept: list[tuple[float, int, ScoredCrop]] = field(default_factory=list)  # (score, seq, crop), best first
    history: deque = field(default_factory=deque)  # (seq, FaceCrop): recent crops for the clip
    clip: list[tuple[int, FaceCrop]] = field(default_factory=list)
    scored: int = 0


ScoredCallback = Callable[[int, ScoredCrop], None]


class CropChooser:
    def __init__(self, scorer: Scorer, top_k: int = 1, clip_frames: int = 0, batch_size: int = 16,
                 on_scored: ScoredCallback | None = None) -> None:
        if top_k < 1 or clip_frames < 0 or batch_size < 1:
            raise ValueError("top_k >= 1, clip_frames >= 0, batch_size >= 1")
        self.scorer = scorer
        self.top_k = top_k
        self.clip_frames = clip_frames
        self.batch_size = batch_size
        self.on_scored = on_scored  # sees every scored crop (the demo draws score curves with it)
        self.stats = ChooserStats()
        self._tracks: dict[int, _TrackCrops] = {}
        self._pending: list[tuple[int, int, FaceCrop]] = []  # (track id, seq, crop)

    def add(self, track_id: int, crop: FaceCrop) -> None:
        state = self._tracks.get(track_id)
        if state is None:
            # A crop can be waiting in the queue while older ones of the track are scored, so
            # the window must reach back clip_frames behind the oldest unscored crop.
            state = self._tracks[track_id] = _TrackCrops(history=deque(maxlen=self.clip_frames + self.batch_size + 1))
        seq = state.next_seq
        state.next_seq += 1
        if self.clip_frames:
            state.history.append((seq, crop))
            if state.kept and state.clip and seq <= state.kept[0][1] + self.clip_frames and seq > state.clip[-1][0]:
                state.clip.append((seq, crop))
        self._pending.append((track_id, seq, crop))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Score every queued crop now."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        pixels = np.stack([crop.pixels for _, _, crop in pending]).astype(np.uint8, copy=False)
        started = time.perf_counter()
        scores = np.asarray(self.scorer.score_batch(pixels), dtype=np.float64).reshape(-1)
        self.stats.score_seconds += time.perf_counter() - started
        if scores.shape[0] != len(pending):
            raise RuntimeError(f"scorer {self.scorer.name} returned {scores.shape[0]} scores for {len(pending)} crops")
        self.stats.batches += 1
        self.stats.crops_scored += len(pending)
        for (track_id, seq, crop), score in zip(pending, scores):
            scored = ScoredCrop(crop=crop, score=float(score), scorer=self.scorer.name)
            state = self._tracks.get(track_id)
            if state is None:
                continue
            state.scored += 1
            self._consider(state, seq, scored)
            if self.on_scored is not None:
                self.on_scored(track_id, scored)

    def _consider(self, state: _TrackCrops, seq: int, scored: ScoredCrop) -> None:
        # NaN would never compare greater: rank it lowest so the track still keeps a crop.
        rank = scored.score if math.isfinite(scored.score) else -math.inf
        if len(state.kept) == self.top_k and rank <= state.kept[-1][0]:
            return
        position = len(state.kept)
        while position > 0 and rank > state.kept[position - 1][0]:  # ties: the earlier crop stays ahead
            position -= 1
        state.kept.insert(position, (rank, seq, scored))
        del state.kept[self.top_k:]
        if position == 0 and self.clip_frames:
            state.clip = [(s, c) for s, c in state.history if seq - self.clip_frames <= s <= seq + self.clip_frames]

    def end_track(self, track: TrackInfo) -> TrackChoice | None:
        """The track is over: its choice if it was long enough, else None. Frees its crops."""
        if track.track_id in {track_id for track_id, _, _ in self._pending}:
            self.flush()
        state = self._tracks.pop(track.track_id, None)
        if not track.long_enough:
            self.stats.tracks_too_short += 1
            return None
        if state is None or not state.kept:
            self.stats.tracks_without_crops += 1
            return None
        self.stats.tracks_chosen += 1
        return TrackChoice(track=track, kept=[scored for _, _, scored in state.kept],
                           clip=[crop for _, crop in state.clip], crops_scored=state.scored)

    def open_track_ids(self) -> list[int]:
        return list(self._tracks)
