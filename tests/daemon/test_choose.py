"""Choosing: the best crop per track whatever the batching, top-k, clips, short tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from snapseal.daemon.choose import CropChooser
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
