"""Harder scenes beside the walk-by, composed like it (eval/scenes/walkby.py) from the real face
photos, with their ground truth:

- ``yaw``: every walker turns the head aside and back while sharp and well lit, close to the
  camera, after a frontal stretch further away (sharpness alone prefers the turned face);
- ``depth``: pairs of people cross at once at different depths (one near and large, one far
  and small), the near one passing in front of the far one;
- ``occlusion``: walkers slow down behind a pillar and are hidden for about two seconds, then
  come out on the other side (one person must stay one track, one record);
- ``lowlight``: the walk-by at a third of the light with strong sensor noise.

The walkers use other photos than the demo's walk-by (``PATCH_OFFSET``), so the harder scenes
also bring other people.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from snapseal.eval.scenes.walkby import WalkbyPlan, Walker, _pose, _truth_at, plan_walkby

SCENES = ("yaw", "depth", "occlusion", "lowlight")
PATCH_OFFSET = 5  # the demo's walk-by uses patches 0..4
YAW_PHASES = (("enter", 0.10, 1.0), ("clear", 0.22, 0.5), ("approach", 0.13, 1.0), ("yaw", 0.40, 0.45),
              ("leave", 0.15, 1.2))
# people crossing at different depths walk at a steady pace (the walk-by's hurry is elsewhere)
DEPTH_PHASES = (("enter", 0.10, 1.0), ("approach", 0.20, 1.0), ("clear", 0.25, 1.0), ("blur", 0.15, 1.0),
                ("turn", 0.15, 1.0), ("leave", 0.15, 1.0))
OCCLUSION_PHASES = (("enter", 0.08, 1.0), ("approach", 0.12, 1.0), ("behind", 0.40, 0.30), ("clear", 0.25, 0.6),
                    ("leave", 0.15, 1.2))


def _with(plan: WalkbyPlan, walkers: list[Walker], **changes) -> WalkbyPlan:
    plan = replace(plan, walkers=walkers, **changes)
    plan.n_frames = max(w.start_frame + w.n_frames for w in walkers) + 3
    plan.truth = [t for frame in range(plan.n_frames) for t in _truth_at(plan, frame)]
    return plan


def plan_scene(scene: str, n_patches: int, seed: int = 0, width: int = 640, height: int = 480) -> WalkbyPlan:
    """The plan (who, where, when; the ground truth) of one harder scene."""
    rng = np.random.default_rng(1000 + seed)
    if scene == "lowlight":
        base = plan_walkby(width, height, n_people=4, frames_per_person=100, n_patches=n_patches, seed=seed)
        walkers = [replace(w, patch_index=(w.patch_index + PATCH_OFFSET) % max(n_patches, 1)) for w in base.walkers]
        return _with(base, walkers, gain=0.35, low_light_noise=9.0, name="lowlight")
    if scene == "yaw":
        base = plan_walkby(width, height, n_people=4, frames_per_person=130, overlap=0.4, n_patches=n_patches, seed=seed)
        walkers = [replace(w, phases=YAW_PHASES, patch_index=(w.person_id + PATCH_OFFSET) % max(n_patches, 1),
                           size_start=0.16, size_end=0.38) for w in base.walkers]
        return _with(base, walkers, name="yaw")
    if scene == "depth":
        base = plan_walkby(width, height, n_people=4, frames_per_person=110, n_patches=n_patches, seed=seed)
        walkers = []
        for pair in range(2):
            start = 2 + pair * 90
            for side, (size_start, size_end, y_frac) in enumerate(((0.11, 0.13, 0.30), (0.30, 0.40, 0.40))):
                person = 2 * pair + side
                walkers.append(Walker(person_id=person, patch_index=(person + PATCH_OFFSET + 2) % max(n_patches, 1),
                                      start_frame=start, n_frames=110, direction=1 if side == 0 else -1,
                                      y_frac=float(y_frac + rng.uniform(-0.02, 0.02)), size_start=size_start,
                                      size_end=size_end, shirt_bgr=tuple(int(c) for c in rng.integers(40, 220, 3)),
                                      phases=DEPTH_PHASES))
        return _with(base, walkers, name="depth")
    if scene == "occlusion":
        base = plan_walkby(width, height, n_people=3, frames_per_person=170, overlap=0.35, n_patches=n_patches,
                           seed=seed)
        # walking across the view (parallel to the camera): the face keeps about its size behind the pillar
        walkers = [replace(w, phases=OCCLUSION_PHASES, direction=1, size_start=0.25, size_end=0.29,
                           patch_index=(w.person_id + PATCH_OFFSET + 1) % max(n_patches, 1)) for w in base.walkers]
        # the pillar stands where the first walker is in the middle of its slow stretch behind it
        first = walkers[0]
        middle = first.start_frame + int(first.n_frames * (0.08 + 0.12 + 0.20))
        pose = _pose(first, middle, width, height)
        half = 0.8 * pose.size * 0.8  # a little wider than the face
        return _with(base, walkers, occluders=((pose.cx - half, pose.cx + half),), name="occlusion")
    raise ValueError(f"unknown scene {scene!r}; known: {', '.join(SCENES)}")


def hidden_frames(plan: WalkbyPlan) -> dict[int, int]:
    """Per walker: the longest run of frames its face is not visible while inside the frame."""
    runs: dict[int, int] = {}
    by_person: dict[int, list] = {}
    for item in plan.truth:
        by_person.setdefault(item.person_id, []).append(item)
    for person, items in by_person.items():
        longest = current = 0
        for item in sorted(items, key=lambda t: t.frame_index):
            current = current + 1 if not item.visible and item.phase not in ("leave", "enter") else 0
            longest = max(longest, current)
        runs[person] = longest
    return runs
