"""The harder scenes (eval/scenes/hard.py): what each one is meant to test is in its ground truth,
and the daemon's tracker gives every person one track on them (truth detector: no MTCNN here)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from snapseal.daemon.track import IouTracker
from snapseal.eval.scenes.hard import SCENES, hidden_frames, plan_scene
from snapseal.eval.scenes.walkby import TruthDetector, render_frames, synthetic_face_patch

PATCHES = 6


def test_the_occlusion_scene_hides_every_walker_for_seconds():
    plan = plan_scene("occlusion", PATCHES)
    assert plan.occluders and all(frames >= 2 * plan.fps for frames in hidden_frames(plan).values())


def test_the_yaw_scene_turns_visible_faces_and_the_depth_scene_mixes_sizes():
    yaw = plan_scene("yaw", PATCHES)
    assert any(t.phase == "yaw" and t.visible for t in yaw.truth)
    depth = plan_scene("depth", PATCHES)
    sizes = sorted(w.size_end for w in depth.walkers)
    assert sizes[-1] > 2 * sizes[0]


def test_low_light_is_dark_and_noisy():
    plan = plan_scene("lowlight", PATCHES)
    frame = next(iter(render_frames(plan, [synthetic_face_patch(seed=i) for i in range(PATCHES)])))
    assert frame.mean() < 80 and plan.low_light_noise > 0


@pytest.mark.parametrize("scene", SCENES)
def test_every_person_gets_one_track_in_every_scene(scene):
    plan = plan_scene(scene, PATCHES)
    detector = TruthDetector(plan)
    tracker = IouTracker(max_age_frames=15, min_length_frames=5)
    by_frame = plan.truth_by_frame()
    tracks_of = defaultdict(set)
    for index in range(plan.n_frames):
        detections = detector.detect(None)
        visible = [t for t in by_frame.get(index, []) if t.visible]
        for truth, track_id in zip(visible, tracker.update(detections, index).track_ids):
            tracks_of[truth.person_id].add(track_id)
    assert tracks_of and all(len(ids) == 1 for ids in tracks_of.values()), dict(tracks_of)
