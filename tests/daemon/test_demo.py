"""The demo's parts: walk-by plans and their ground truth, rendering, the per-track picture."""

from __future__ import annotations

import numpy as np
import pytest

from snapseal.eval.scenes.walkby import PHASES, TruthDetector, plan_walkby, render_frames, synthetic_face_patch
from snapseal.daemon.types import Box, Detection, FaceCrop, ScoredCrop


def test_plan_walks_every_person_through_every_phase():
    plan = plan_walkby(320, 240, n_people=3, frames_per_person=60, seed=1)
    for person in range(3):
        phases = [t.phase for t in plan.truth if t.person_id == person]
        assert [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]] == [name for name, _, _ in PHASES]
        visible = [t for t in plan.truth if t.person_id == person and t.visible]
        assert len(visible) >= 20  # seen long enough to yield a record
        assert not any(t.visible for t in plan.truth if t.person_id == person and t.phase == "leave")
        sizes = [t.box.height for t in visible if t.phase in ("enter", "approach")]
        assert sizes[-1] > sizes[0]  # approaching: the face grows
    assert all(0 <= t.box.x1 < t.box.x2 <= 320 and 0 <= t.box.y1 < t.box.y2 <= 240 for t in plan.truth)
    # Consecutive walkers go opposite ways, so paths cross.
    assert [w.direction for w in plan.walkers] == [1, -1, 1]


def test_rendered_frames_and_the_truth_detector():
    plan = plan_walkby(160, 120, n_people=2, frames_per_person=30, seed=0)
    frames = list(render_frames(plan, [synthetic_face_patch()]))
    assert len(frames) == plan.n_frames and frames[0].shape == (120, 160, 3) and frames[0].dtype == np.uint8
    detector = TruthDetector(plan)
    found = [detector.detect(frame) for frame in frames]
    by_frame = plan.truth_by_frame()
    assert [len(f) for f in found] == [sum(t.visible for t in by_frame.get(i, [])) for i in range(plan.n_frames)]
    # A face is drawn where the truth says it is: the region differs from the empty background.
    index, faces = next((i, f) for i, f in enumerate(found) if f)
    box = faces[0].box
    region = frames[index][int(box.y1):int(box.y2), int(box.x1):int(box.x2)].astype(float)
    assert region.std() > 10


def test_track_picture_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    from snapseal.eval.scenes.figures import draw_track, pick_strip

    detection = Detection(Box(0, 0, 10, 10), np.zeros((5, 2), np.float32), 0.9)
    crops = [ScoredCrop(FaceCrop(np.full((64, 64), i * 8, np.uint8), detection, i, float(i)), float(np.sin(i / 4)), "t")
             for i in range(30)]
    strip = pick_strip(crops, kept_frame=6, max_crops=8)
    assert len(strip) <= 8 and any(c.crop.frame_index == 6 for c in strip)
    path = draw_track(tmp_path / "t.png", "track 1", crops, kept_frame=6, scorer_name="t")
    assert path.read_bytes()[:4] == b"\x89PNG"
