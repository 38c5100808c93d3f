"""Choose: keep the best crop(s) of every track, scoring crops in batches.

Crops from all tracks are queued and scored together when the queue holds ``batch_size`` crops
or when a track ends (so a finished track is decided at once). Per track only what can still
be kept stays in memory: the top-k scored crops and, for the optional clip, a short window of
recent crops — never the whole track.

The paper's rule: a track that lasted at least the minimum length always yields its best crop,
however poor. With ``top_k`` > 1 the k best are kept; with ``clip_frames`` = h > 0 the crops
up to h before and h after the best one are kept with it (the paper's generalization: a short
clip around the best frame, sealed together).

Scoring runs inline (``background=False``: the caller's thread scores each batch) or on one
background thread (``background=True``, what the daemon uses): on the board the FPGA computes
a batch while the ARM cores detect faces in the next frame, and in emulation onnxruntime and
cv2 release the GIL. Either way the batches are the same and their scores are applied to the
tracks on the caller's thread, in the order the batches were formed, so both modes keep the
same crops and see the same ``on_scored`` calls. At most ``max_in_flight`` batches wait for or
run on the worker; handing over one more first waits for the oldest (back-pressure, bounded
memory). A track is decided only once every one of its crops is scored; a scorer exception is
raised on the caller's thread by the call that collects that batch (``add``, ``end_track``,
``flush`` or ``close``). ``ChooserStats`` keeps the worker's busy time (``score_seconds``)
apart from the time the caller spent scoring or waiting for scores (``score_wait_seconds``);
inline the two are the same.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from snapseal.daemon.scoring.base import Scorer
from snapseal.daemon.scoring.chooser import PARETO_CAP, SCORE_SAMPLE, Ranker, finite_rank, make_ranker, track_scale
from snapseal.daemon.track import TrackInfo
from snapseal.daemon.types import FaceCrop, ScoredCrop

DEFAULT_MAX_IN_FLIGHT = 2  # batches handed to the worker and not yet collected: one running, one waiting


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
    score_seconds: float = 0.0  # the scorer busy (on the worker thread when in the background)
    score_wait_seconds: float = 0.0  # the caller scoring inline or blocked waiting for scores
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
    unscored: int = 0  # crops added whose scores are not applied yet (queued or in flight)
    # calibrated rankers only: the crops that can still win for some track scale, and the scores
    front: list[tuple[float, float, int, ScoredCrop]] = field(default_factory=list)  # (score, cost, seq, crop)
    scores: list[float] = field(default_factory=list)  # a bounded sample of the track's scores
    sample: random.Random = field(default_factory=lambda: random.Random(0))


@dataclass(frozen=True)
class _Batch:
    entries: list[tuple[int, int, FaceCrop]]  # (track id, seq, crop), in queue order
    result: "Future[tuple[np.ndarray, float]]"  # (scores, seconds the scorer took)


ScoredCallback = Callable[[int, ScoredCrop], None]


def _timed_scores(scorer: Scorer, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    scores = np.asarray(scorer.score_batch(pixels), dtype=np.float64).reshape(-1)
    return scores, time.perf_counter() - started


def _inline(scorer: Scorer, pixels: np.ndarray) -> "Future[tuple[np.ndarray, float]]":
    """Score on the calling thread; the outcome (scores or exception) as a finished Future."""
    future: Future[tuple[np.ndarray, float]] = Future()
    try:
        future.set_result(_timed_scores(scorer, pixels))
    except Exception as error:  # noqa: BLE001 - re-raised by Future.result() when collected
        future.set_exception(error)
    return future


class CropChooser:
    def __init__(self, scorer: Scorer, top_k: int = 1, clip_frames: int = 0, batch_size: int = 16,
                 on_scored: ScoredCallback | None = None, background: bool = False,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, ranker: Ranker | None = None) -> None:
        if top_k < 1 or clip_frames < 0 or batch_size < 1 or max_in_flight < 1:
            raise ValueError("top_k >= 1, clip_frames >= 0, batch_size >= 1, max_in_flight >= 1")
        self.scorer = scorer
        # orders a track's scored crops (daemon/scoring/chooser.py); None = the measured default
        self.ranker = ranker if ranker is not None else make_ranker(None)
        self.top_k = top_k
        self.clip_frames = clip_frames
        self.batch_size = batch_size
        self.on_scored = on_scored  # sees every scored crop (the demo draws score curves with it)
        self.max_in_flight = max_in_flight if background else 1
        self.stats = ChooserStats()
        self._tracks: dict[int, _TrackCrops] = {}
        self._pending: list[tuple[int, int, FaceCrop]] = []  # (track id, seq, crop), not handed over yet
        self._in_flight: deque[_Batch] = deque()  # handed to the scorer, scores not applied yet; oldest first
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapseal-score") if background else None

    @property
    def background(self) -> bool:
        return self._executor is not None

    def add(self, track_id: int, crop: FaceCrop) -> None:
        self._collect_finished()
        state = self._tracks.get(track_id)
        if state is None:
            # A crop can be waiting in the queue (or in flight) while older ones of the track are
            # scored, so the window must reach back clip_frames behind the oldest unscored crop.
            lag = self.max_in_flight if self.background else 0  # whole batches scored after this one's
            window = self.clip_frames + (lag + 1) * self.batch_size + 1
            state = self._tracks[track_id] = _TrackCrops(history=deque(maxlen=window))
        seq = state.next_seq
        state.next_seq += 1
        if self.clip_frames:
            state.history.append((seq, crop))
            if state.kept and state.clip and seq <= state.kept[0][1] + self.clip_frames and seq > state.clip[-1][0]:
                state.clip.append((seq, crop))
        self._pending.append((track_id, seq, crop))
        state.unscored += 1
        if len(self._pending) >= self.batch_size:
            self._hand_over()

    def flush(self) -> None:
        """Score every queued crop now and apply every score (waits for the worker)."""
        self._hand_over()
        while self._in_flight:
            self._collect_oldest()

    def close(self) -> None:
        """Flush, then stop the worker thread (later batches are scored inline). Idempotent."""
        try:
            self.flush()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def __enter__(self) -> "CropChooser":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _hand_over(self) -> None:
        """The queued crops become one batch for the scorer (waiting first if too many are in flight)."""
        if not self._pending:
            return
        while len(self._in_flight) >= self.max_in_flight:  # back-pressure: memory stays bounded
            self._collect_oldest()  # (if its batch failed, the queued crops stay queued)
        entries, self._pending = self._pending, []
        pixels = np.stack([crop.pixels for _, _, crop in entries]).astype(np.uint8, copy=False)
        started = time.perf_counter()
        if self._executor is None:
            result = _inline(self.scorer, pixels)
        else:
            result = self._executor.submit(_timed_scores, self.scorer, pixels)
        self.stats.score_wait_seconds += time.perf_counter() - started
        self._in_flight.append(_Batch(entries, result))
        if self._executor is None:
            self._collect_oldest()

    def _collect_finished(self) -> None:
        """Apply the scores of batches the worker has finished, oldest first, without waiting."""
        while self._in_flight and self._in_flight[0].result.done():
            self._collect_oldest()

    def _collect_oldest(self) -> None:
        """Wait for the oldest batch in flight and apply its scores (or raise its scorer's error)."""
        batch = self._in_flight.popleft()
        started = time.perf_counter()
        try:
            scores, seconds = batch.result.result()
        finally:
            self.stats.score_wait_seconds += time.perf_counter() - started
            for track_id, _, _ in batch.entries:
                state = self._tracks.get(track_id)
                if state is not None:
                    state.unscored -= 1  # scored or lost with its batch: not waited for again
        self.stats.score_seconds += seconds
        if scores.shape[0] != len(batch.entries):
            raise RuntimeError(f"scorer {self.scorer.name} returned {scores.shape[0]} scores for {len(batch.entries)} crops")
        self.stats.batches += 1
        self.stats.crops_scored += len(batch.entries)
        for (track_id, seq, crop), score in zip(batch.entries, scores):
            scored = ScoredCrop(crop=crop, score=float(score), scorer=self.scorer.name)
            state = self._tracks.get(track_id)
            if state is None:
                continue
            state.scored += 1
            self._consider(state, seq, scored)
            if self.on_scored is not None:
                self.on_scored(track_id, scored)

    def _consider(self, state: _TrackCrops, seq: int, scored: ScoredCrop) -> None:
        # NaN would never compare greater: rank it lowest so the track still keeps a crop. Only
        # the kept crops (and their evidence images) stay referenced: the rest are freed here.
        rank = finite_rank(self.ranker(scored)) if math.isfinite(scored.score) else -math.inf
        if getattr(self.ranker, "calibrated", False):
            self._keep_on_front(state, seq, scored)
        if len(state.kept) == self.top_k and rank <= state.kept[-1][0]:
            return
        position = len(state.kept)
        while position > 0 and rank > state.kept[position - 1][0]:  # ties: the earlier crop stays ahead
            position -= 1
        state.kept.insert(position, (rank, seq, scored))
        del state.kept[self.top_k:]
        if position == 0 and self.clip_frames:
            state.clip = [(s, c) for s, c in state.history if seq - self.clip_frames <= s <= seq + self.clip_frames]

    def _keep_on_front(self, state: _TrackCrops, seq: int, scored: ScoredCrop) -> None:
        """Calibrated ranker: keep the crop if fewer than top_k kept crops beat it on both its
        score and its cost (ties: the earlier crop wins), and sample its score for the scale."""
        value = scored.score if math.isfinite(scored.score) else -math.inf
        if math.isfinite(value):
            if len(state.scores) < SCORE_SAMPLE:
                state.scores.append(value)
            else:  # reservoir sampling with a fixed seed: deterministic
                slot = state.sample.randrange(state.scored)
                if slot < SCORE_SAMPLE:
                    state.scores[slot] = value
        cost = self.ranker.cost(scored)

        def beats(a: tuple, b: tuple) -> bool:
            return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1] or a[2] < b[2])

        entry = (value, cost, seq, scored)
        if sum(beats(other, entry) for other in state.front) >= self.top_k:
            return
        front = state.front + [entry]
        state.front = [e for e in front if sum(beats(o, e) for o in front if o is not e) < self.top_k]
        if len(state.front) > PARETO_CAP:  # keep the best under the scale seen so far
            scale = track_scale(state.scores)
            state.front.sort(key=lambda e: (-(e[0] - scale * e[1]), e[2]))
            del state.front[PARETO_CAP:]
            state.front.sort(key=lambda e: e[2])

    def _calibrated_choice(self, state: _TrackCrops) -> list[ScoredCrop]:
        scale = track_scale(state.scores)
        ordered = sorted(state.front, key=lambda e: (-(e[0] - scale * e[1]), e[2]))
        return [e[3] for e in ordered[:self.top_k]]

    def end_track(self, track: TrackInfo) -> TrackChoice | None:
        """The track is over: its choice if it was long enough, else None. Frees its crops.

        Waits until every crop of the track is scored (its queued crops are handed over now)."""
        state = self._tracks.get(track.track_id)
        if state is not None and state.unscored:
            if any(track_id == track.track_id for track_id, _, _ in self._pending):
                self._hand_over()
            while state.unscored and self._in_flight:
                self._collect_oldest()
        state = self._tracks.pop(track.track_id, None)
        if not track.long_enough:
            self.stats.tracks_too_short += 1
            return None
        if state is None or not state.kept:
            self.stats.tracks_without_crops += 1
            return None
        self.stats.tracks_chosen += 1
        kept = [scored for _, _, scored in state.kept]
        clip = [crop for _, crop in state.clip]
        if getattr(self.ranker, "calibrated", False) and state.front:
            kept = self._calibrated_choice(state)
            if self.clip_frames and kept[0] is not state.kept[0][2]:
                # decided at the end: the clip is what the recent-crop window still holds around it
                best = kept[0].crop.frame_index
                clip = [crop for _, crop in state.history if abs(crop.frame_index - best) <= self.clip_frames]
        return TrackChoice(track=track, kept=kept, clip=clip, crops_scored=state.scored)

    def open_track_ids(self) -> list[int]:
        return list(self._tracks)
