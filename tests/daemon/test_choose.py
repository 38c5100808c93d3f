"""Choosing: the best crop per track whatever the batching, top-k, clips, short tracks."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from snapseal.daemon.choose import CropChooser
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.track import TrackInfo
from snapseal.daemon.types import Box, Detection, FaceCrop


class MeanScorer:
    """Scores a crop by its mean pixel value; records every batch it was given."""

    name = "mean"
    model_id = "test-mean"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def score_batch(self, crops: np.ndarray) -> np.ndarray:
        assert crops.dtype == np.uint8 and crops.shape[1:] == (64, 64)
        self.batches.append(len(crops))
        return crops.reshape(len(crops), -1).mean(axis=1).astype(np.float64)


def crop(value: float, frame: int) -> FaceCrop:
    detection = Detection(Box(0, 0, 10, 10), np.zeros((5, 2), np.float32), 0.99)
    return FaceCrop(np.full((64, 64), int(value), np.uint8), detection, frame, 1000.0 + frame)


def info(track_id: int, hits: int, long_enough: bool = True) -> TrackInfo:
    return TrackInfo(track_id, 0, hits - 1, hits, long_enough)


@pytest.mark.parametrize("batch_size", [1, 3, 7, 64])
def test_best_crop_of_each_track_whatever_the_batch_size(batch_size):
    rng = np.random.default_rng(batch_size)
    values = {1: rng.permutation(200)[:30], 2: rng.permutation(200)[:20]}
    scorer = MeanScorer()
    chooser = CropChooser(scorer, batch_size=batch_size)
    for frame in range(30):  # the two tracks' crops interleave in the queue
        for track_id, track_values in values.items():
            if frame < len(track_values):
                chooser.add(track_id, crop(track_values[frame], frame))
    for track_id, track_values in values.items():
        choice = chooser.end_track(info(track_id, len(track_values)))
        assert choice is not None
        assert choice.best.score == max(track_values)
        assert choice.best.crop.frame_index == int(np.argmax(track_values))
        assert choice.crops_scored == len(track_values) and len(choice.kept) == 1
    assert max(scorer.batches) <= batch_size and sum(scorer.batches) == 50
    assert chooser.open_track_ids() == []


def test_a_finished_track_is_scored_at_once_even_if_the_batch_is_not_full():
    scorer = MeanScorer()
    chooser = CropChooser(scorer, batch_size=100)
    for frame in range(5):
        chooser.add(1, crop(10 + frame, frame))
    choice = chooser.end_track(info(1, 5))
    assert choice is not None and choice.best.score == 14.0 and scorer.batches == [5]


def test_a_poor_track_still_yields_its_best_and_a_short_one_nothing():
    chooser = CropChooser(MeanScorer(), batch_size=4)
    for frame in range(6):
        chooser.add(1, crop(1, frame))  # every crop is poor
        chooser.add(2, crop(200, frame))
    poor = chooser.end_track(info(1, 6))
    assert poor is not None and poor.best.score == 1.0
    assert chooser.end_track(info(2, 6, long_enough=False)) is None
    assert chooser.stats.tracks_chosen == 1 and chooser.stats.tracks_too_short == 1


def test_ties_keep_the_earliest_and_nan_ranks_last():
    class Fixed:
        name, model_id = "fixed", "x"

        def __init__(self, scores):
            self.scores = list(scores)

        def score_batch(self, crops):
            out, self.scores = self.scores[:len(crops)], self.scores[len(crops):]
            return np.array(out, np.float64)

    chooser = CropChooser(Fixed([math.nan, 5.0, 5.0, 2.0]), batch_size=2)
    for frame in range(4):
        chooser.add(1, crop(0, frame))
    choice = chooser.end_track(info(1, 4))
    assert choice.best.crop.frame_index == 1 and choice.best.score == 5.0

    only_nan = CropChooser(Fixed([math.nan, math.nan]), batch_size=2)
    only_nan.add(1, crop(0, 0))
    only_nan.add(1, crop(0, 1))
    assert only_nan.end_track(info(1, 2)) is not None  # still one record for the track


def test_top_k_keeps_the_k_best_in_order():
    chooser = CropChooser(MeanScorer(), top_k=3, batch_size=5)
    for frame, value in enumerate([5, 9, 1, 7, 3, 8, 2]):
        chooser.add(1, crop(value, frame))
    choice = chooser.end_track(info(1, 7))
    assert [s.score for s in choice.kept] == [9.0, 8.0, 7.0]


@pytest.mark.parametrize("batch_size", [1, 4, 50])
def test_clip_holds_the_crops_around_the_best(batch_size):
    values = [10, 20, 30, 40, 90, 40, 30, 20, 10, 5, 5, 5]
    chooser = CropChooser(MeanScorer(), clip_frames=2, batch_size=batch_size)
    for frame, value in enumerate(values):
        chooser.add(1, crop(value, frame))
    choice = chooser.end_track(info(1, len(values)))
    assert choice.best.crop.frame_index == 4
    assert [c.frame_index for c in choice.clip] == [2, 3, 4, 5, 6]


def test_clip_at_the_start_and_end_of_a_track():
    chooser = CropChooser(MeanScorer(), clip_frames=3, batch_size=2)
    for frame, value in enumerate([99, 1, 1]):
        chooser.add(1, crop(value, frame))
    assert [c.frame_index for c in chooser.end_track(info(1, 3)).clip] == [0, 1, 2]


def test_scorer_returning_the_wrong_count_is_an_error():
    class Broken(MeanScorer):
        def score_batch(self, crops):
            return np.zeros(len(crops) + 1)

    chooser = CropChooser(Broken(), batch_size=2)
    chooser.add(1, crop(1, 0))
    with pytest.raises(RuntimeError, match="returned 3 scores for 2 crops"):
        chooser.add(1, crop(1, 1))


# ---------------------------------------------------------------- scoring on the worker thread


class SlowMeanScorer(MeanScorer):
    """MeanScorer that takes a little (random) time, and notes the thread it ran on."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self.threads: set[str] = set()

    def score_batch(self, crops: np.ndarray) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        time.sleep(float(self.rng.uniform(0.0, 0.004)))
        return super().score_batch(crops)


def replay(chooser: CropChooser, seed: int) -> list:
    """Interleaved tracks that start and end at random frames (some too short); every choice."""
    rng = np.random.default_rng(seed)
    open_tracks: dict[int, int] = {}
    choices, next_id = [], 1
    for frame in range(300):
        if rng.random() < 0.08 or not open_tracks:
            open_tracks[next_id] = 0
            next_id += 1
        for track_id in list(open_tracks):
            if rng.random() < 0.85:  # a missed detection now and then
                chooser.add(track_id, crop(rng.integers(0, 256), frame))
                open_tracks[track_id] += 1
            if rng.random() < 0.04:
                hits = open_tracks.pop(track_id)
                choices.append(chooser.end_track(info(track_id, max(hits, 1), long_enough=hits >= 3)))
    for track_id, hits in open_tracks.items():
        choices.append(chooser.end_track(info(track_id, max(hits, 1), long_enough=hits >= 3)))
    chooser.close()
    return choices


def describe(choice):
    if choice is None:
        return None
    return (choice.track.track_id, [(s.score, s.crop.frame_index) for s in choice.kept],
            [c.frame_index for c in choice.clip], choice.crops_scored)


@pytest.mark.parametrize("batch_size,top_k,clip_frames", [(1, 1, 0), (4, 1, 2), (16, 3, 3), (7, 2, 5)])
def test_the_worker_thread_chooses_exactly_what_inline_scoring_chooses(batch_size, top_k, clip_frames):
    outcomes = []
    for background in (False, True):
        scorer = SlowMeanScorer(seed=batch_size)
        seen: list = []
        chooser = CropChooser(scorer, top_k=top_k, clip_frames=clip_frames, batch_size=batch_size, background=background,
                              on_scored=lambda track_id, s: seen.append((track_id, s.crop.frame_index, s.score)))  # noqa: B023
        choices = replay(chooser, seed=batch_size + top_k)
        outcomes.append(([describe(c) for c in choices], seen, scorer.batches, chooser.stats.crops_scored))
        assert (threading.main_thread().name in scorer.threads) == (not background)
    assert outcomes[0] == outcomes[1]  # same choices, same crops scored in the same order, same batches
    assert any(c is not None for c in outcomes[0][0])


def test_a_track_is_decided_only_after_all_its_crops_are_scored():
    scorer = SlowMeanScorer()
    with CropChooser(scorer, batch_size=3, background=True) as chooser:
        for frame in range(10):
            chooser.add(1, crop(100 + frame, frame))  # three batches handed over, one crop still queued
        choice = chooser.end_track(info(1, 10))
        assert choice.crops_scored == 10 and choice.best.score == 109.0
        assert scorer.batches == [3, 3, 3, 1]


def test_the_worker_applies_back_pressure():
    gate = threading.Event()

    class Gated(MeanScorer):
        def score_batch(self, crops):
            gate.wait(10.0)
            return super().score_batch(crops)

    chooser = CropChooser(Gated(), batch_size=1, background=True, max_in_flight=2)
    added = []

    def producer():
        for frame in range(6):
            chooser.add(1, crop(frame, frame))
            added.append(frame)

    thread = threading.Thread(target=producer)
    thread.start()
    time.sleep(0.3)
    assert added == [0, 1]  # the third batch waits for the first: at most 2 in flight
    gate.set()
    thread.join(10.0)
    assert added == list(range(6))
    assert chooser.end_track(info(1, 6)).best.score == 5.0
    chooser.close()


def test_a_scorer_error_on_the_worker_is_raised_in_the_callers_thread():
    class FailsOnce(MeanScorer):
        def score_batch(self, crops):
            if not self.batches:
                self.batches.append(-1)
                raise SnapsealError("non-finite score from the accelerator")
            return super().score_batch(crops)

    chooser = CropChooser(FailsOnce(), batch_size=2, background=True)
    with pytest.raises(SnapsealError, match="non-finite"):  # raised by the call that collects the batch
        chooser.add(1, crop(10, 0))
        chooser.add(1, crop(20, 1))  # the failing batch, handed to the worker
        time.sleep(0.2)
        chooser.add(2, crop(30, 2))
    chooser.add(2, crop(40, 3))
    # The failed batch's crops are lost (as when scoring inline); the chooser goes on.
    assert chooser.end_track(info(1, 2)) is None
    assert chooser.end_track(info(2, 2)).best.score == 40.0
    chooser.close()
    chooser.close()  # idempotent; later work is scored inline
    chooser.add(3, crop(50, 4))
    assert chooser.end_track(info(3, 1)).best.score == 50.0


def test_waiting_for_the_worker_is_timed_apart_from_its_busy_time():
    """The first batch is scored while the caller is elsewhere (it waits for an event, not for
    time), so the caller's wait covers at most the second, fast batch: busy > wait."""
    finished = threading.Event()

    class SlowFirst(MeanScorer):
        def score_batch(self, crops):
            if not finished.is_set():
                time.sleep(0.2)
            result = super().score_batch(crops)
            finished.set()
            return result

    with CropChooser(SlowFirst(), batch_size=1, background=True) as chooser:
        chooser.add(1, crop(1, 0))
        assert finished.wait(30.0)  # the caller does other work while the batch is scored
        chooser.add(1, crop(2, 1))
        chooser.end_track(info(1, 2))
    assert chooser.stats.score_seconds >= 0.2
    assert chooser.stats.score_wait_seconds < chooser.stats.score_seconds

    inline = CropChooser(SlowFirst(), batch_size=1)
    finished.clear()
    inline.add(1, crop(1, 0))
    assert inline.stats.score_wait_seconds >= inline.stats.score_seconds >= 0.2


def test_a_batch_failing_during_back_pressure_leaves_the_queued_crops_queued():
    gate = threading.Event()

    class FirstFailsLate(MeanScorer):
        def score_batch(self, crops):
            if not self.batches:
                self.batches.append(-1)
                gate.wait(10.0)
                raise SnapsealError("fpga backend: odma0 did not finish within 5.0 s")
            return super().score_batch(crops)

    chooser = CropChooser(FirstFailsLate(), batch_size=1, background=True, max_in_flight=1)
    chooser.add(1, crop(7, 0))  # handed over; the worker fails it once the gate opens
    threading.Timer(0.1, gate.set).start()
    with pytest.raises(SnapsealError, match="did not finish"):
        chooser.add(1, crop(9, 1))  # queued, then waits for the failing batch (back-pressure)
    choice = chooser.end_track(info(1, 2))
    assert choice.best.score == 9.0 and choice.crops_scored == 1
    chooser.close()


# --- rankers (daemon/scoring/chooser.py) and what stays in memory -------------------------------

import gc  # noqa: E402
import weakref  # noqa: E402

from snapseal.daemon.scoring.chooser import (  # noqa: E402
    CHOOSERS,
    POSE_UNRELIABLE,
    FrontalRanker,
    make_ranker,
    pose_deviation,
    score_ranker,
)
from snapseal.daemon.types import EvidenceImage, ScoredCrop  # noqa: E402


def face(nose_dx: float = 0.0, roll_deg: float = 0.0, x0: float = 100.0, size: float = 80.0) -> Detection:
    """Five landmarks of a face of ``size`` px: eyes 0.4 size apart, the nose moved by
    ``nose_dx`` eye distances (a turned head), the whole face rolled by ``roll_deg``."""
    eye = 0.4 * size
    points = np.array([[-eye / 2, 0], [eye / 2, 0], [nose_dx * eye, 0.6 * eye], [-0.35 * eye + nose_dx * eye * 0.6, 1.2 * eye],
                       [0.35 * eye + nose_dx * eye * 0.6, 1.2 * eye]])
    a = math.radians(roll_deg)
    rotated = points @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    centre = np.array([x0 + size / 2, x0 + 0.4 * size])
    return Detection(Box(x0, x0, x0 + size, x0 + size), (rotated + centre).astype(np.float32), 0.99)


def test_pose_deviation_is_zero_for_a_frontal_face_and_grows_with_the_turn():
    assert pose_deviation(face(0.0)) == pytest.approx(0.0, abs=1e-6)
    assert pose_deviation(face(0.0, roll_deg=25)) == pytest.approx(0.0, abs=1e-5)  # roll is not a turn
    turns = [pose_deviation(face(dx)) for dx in (0.0, 0.1, 0.2, 0.4)]
    assert turns == sorted(turns) and turns[-1] > turns[1] > 0
    assert pose_deviation(face(-0.3)) == pytest.approx(pose_deviation(face(0.3)), rel=1e-6)  # either side
    missing = Detection(Box(0, 0, 10, 10), np.full((5, 2), np.nan, np.float32), 0.9)
    assert pose_deviation(missing) == POSE_UNRELIABLE


def _scored(detection: Detection, score: float, frame: int = 0) -> ScoredCrop:
    return ScoredCrop(FaceCrop(np.zeros((64, 64), np.uint8), detection, frame, 0.0), score, "test")


def test_frontal_ranker_prefers_the_frontal_face_at_equal_score_and_the_score_otherwise():
    ranker = FrontalRanker(pose_weight=1.0, size_weight=0.0)
    assert ranker(_scored(face(0.0), 1000.0)) > ranker(_scored(face(0.3), 1000.0))
    assert ranker(_scored(face(0.0), 1000.0)) < ranker(_scored(face(0.0), 2000.0))
    assert score_ranker(_scored(face(0.3), 5.0)) == 5.0


def test_rankers_by_name_and_unknown_names_are_an_error():
    assert set(CHOOSERS) >= {"default", "score", "frontal"}
    assert make_ranker("score") is score_ranker
    assert isinstance(make_ranker("frontal"), FrontalRanker)
    make_ranker(None)
    make_ranker("default")
    with pytest.raises(SnapsealError, match="unknown chooser"):
        make_ranker("sharpest")


def test_the_chooser_keeps_the_frontal_frame_with_the_frontal_ranker():
    class Constant:
        name, model_id = "constant", "test"

        def score_batch(self, crops):
            return np.full(len(crops), 4096.0)

    chooser = CropChooser(Constant(), ranker=make_ranker("frontal"))
    turns = [0.4, 0.3, 0.05, 0.2, 0.35]
    for frame, dx in enumerate(turns):
        chooser.add(1, FaceCrop(np.zeros((64, 64), np.uint8), face(dx), frame, 0.0))
    assert chooser.end_track(info(1, len(turns))).best.crop.frame_index == 2


def test_only_the_kept_crops_evidence_stays_in_memory():
    """A long track's evidence images are freed as soon as they fall out of the top k."""
    alive: list[weakref.ref] = []
    chooser = CropChooser(MeanScorer(), top_k=2, batch_size=4)
    for frame in range(200):
        pixels = np.full((120, 100, 3), frame % 251, np.uint8)
        alive.append(weakref.ref(pixels))
        evidence = (EvidenceImage(pixels, "evidence", (0, 0, 100, 120)),)
        chooser.add(1, FaceCrop(np.full((64, 64), frame % 251, np.uint8), crop(0, frame).detection, frame, 0.0,
                                evidence))
        del pixels, evidence
    chooser.flush()
    gc.collect()
    assert sum(ref() is not None for ref in alive) <= 2  # the top 2, nothing else of the track
    choice = chooser.end_track(info(1, 200))
    assert [c.crop.evidence[0].pixels[0, 0, 0] for c in choice.kept] == [199, 198]


@pytest.mark.parametrize("top_k,seed", [(1, 0), (1, 1), (2, 2), (3, 3)])
def test_the_calibrated_ranker_online_keeps_what_the_offline_formula_picks(top_k, seed):
    """The chooser never sees the track's scale before the end, yet keeps exactly the crops that
    (s - median) / MAD - pose_weight x deviation + size_weight x log2(height) ranks first."""
    from snapseal.daemon.scoring.chooser import CalibratedFrontalRanker, pose_deviation

    rng = np.random.default_rng(seed)
    n = 150
    scores = rng.normal(3000.0, 200.0, n)
    turns = rng.uniform(-0.4, 0.4, n)
    sizes = rng.uniform(50, 150, n)
    queue = list(scores)

    class Replay:
        name, model_id = "replay", "test"

        def score_batch(self, crops):
            return np.array([queue.pop(0) for _ in range(len(crops))])

    ranker = CalibratedFrontalRanker()
    chooser = CropChooser(Replay(), top_k=top_k, batch_size=7, ranker=ranker)
    detections = [face(turns[i], size=sizes[i]) for i in range(n)]
    for i in range(n):
        chooser.add(1, FaceCrop(np.zeros((64, 64), np.uint8), detections[i], i, 0.0))
    kept = [c.crop.frame_index for c in chooser.end_track(info(1, n)).kept]
    median = np.median(scores)
    mad = np.median(np.abs(scores - median))
    deviation = np.array([pose_deviation(d) for d in detections])
    offline = (scores - median) / mad - ranker.pose_weight * deviation + ranker.size_weight * np.log2(sizes)
    assert kept == [int(i) for i in np.argsort(-offline, kind="stable")[:top_k]]
    assert len(chooser._tracks) == 0


def test_the_calibrated_ranker_keeps_a_bounded_front_of_evidence():
    from snapseal.daemon.scoring.chooser import PARETO_CAP

    alive: list[weakref.ref] = []
    chooser = CropChooser(MeanScorer(), batch_size=4, ranker=make_ranker("frontal-calibrated"))
    rng = np.random.default_rng(5)
    for frame in range(300):
        pixels = np.full((60, 50, 3), frame % 251, np.uint8)
        alive.append(weakref.ref(pixels))
        detection = face(float(rng.uniform(-0.4, 0.4)), size=float(rng.uniform(50, 150)))
        chooser.add(1, FaceCrop(np.full((64, 64), rng.integers(0, 256), np.uint8), detection, frame, 0.0,
                                (EvidenceImage(pixels, "evidence", (0, 0, 50, 60)),)))
        del pixels
    chooser.flush()
    gc.collect()
    assert 1 <= sum(ref() is not None for ref in alive) <= PARETO_CAP
    assert chooser.end_track(info(1, 300)).best.crop.evidence
