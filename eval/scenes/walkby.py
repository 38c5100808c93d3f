"""A synthetic walk-by video composed from real face photos, with its ground truth.

Several people cross the frame, alternating directions so their paths cross. Each one, over
its lifetime: enters at the frame edge, approaches the camera (the face grows), passes through
shade (darkening), hurries (motion blur), turns away (approximated by a horizontal squeeze and
hair covering the face from one side) and leaves through the other edge. Because we compose
the frames, we know every face box in every frame: the tracker measurement and the pipeline
tests compare against that ground truth.

The faces are real photos from packages (``build/assets/``, mk/data.mk); ``face_patches``
cuts a head-and-shoulders patch around every face the detector finds in them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from snapseal.daemon.types import Box

# Phases of one walker's lifetime: (name, share of the lifetime, walking speed weight).
PHASES: tuple[tuple[str, float, float], ...] = (
    ("enter", 0.10, 1.0),
    ("approach", 0.20, 1.0),
    ("shade", 0.15, 1.0),
    ("clear", 0.15, 0.5),  # slows down facing the camera: the best crops should come from here
    ("blur", 0.12, 2.5),  # hurries: motion blur
    ("turn", 0.16, 1.0),
    ("leave", 0.12, 1.2),
)


@dataclass(frozen=True)
class FacePatch:
    """A photo region around one face; ``face_box`` is the face inside it (patch pixels)."""

    image_bgr: np.ndarray
    face_box: Box


@dataclass(frozen=True)
class Walker:
    person_id: int
    patch_index: int
    start_frame: int
    n_frames: int
    direction: int  # +1 walks left to right, -1 right to left
    y_frac: float  # face centre height, fraction of the frame height
    size_start: float  # face height, fraction of the frame height, at entry
    size_end: float  # ... once close to the camera
    shirt_bgr: tuple[int, int, int]
    phases: tuple[tuple[str, float, float], ...] = PHASES  # the harder scenes (eval/scenes/hard.py) vary them

    def phase_at(self, frame_index: int) -> str | None:
        u = (frame_index - self.start_frame) / max(self.n_frames - 1, 1)
        if u < 0.0 or u > 1.0:
            return None
        edge = 0.0
        for name, share, _ in self.phases:
            edge += share
            if u <= edge + 1e-9:
                return name
        return self.phases[-1][0]


@dataclass(frozen=True)
class TruthBox:
    """One face in one frame as composed: where it is and whether a detector should see it."""

    frame_index: int
    person_id: int
    box: Box  # the face box, clipped to the frame
    phase: str
    visible: bool  # mostly inside the frame, not hidden behind a nearer person, not turned away


@dataclass
class WalkbyPlan:
    width: int
    height: int
    fps: float
    n_frames: int
    walkers: list[Walker]
    seed: int
    truth: list[TruthBox] = field(default_factory=list)
    # Harder scenes (eval/scenes/hard.py): pillars in front of everyone (x1, x2 frame pixels, full
    # height), a sensor gain below 1 (low light) and the extra sensor noise (std, grey levels)
    # added after the gain.
    occluders: tuple[tuple[float, float], ...] = ()
    gain: float = 1.0
    low_light_noise: float = 0.0
    name: str = "walk-by"

    def truth_by_frame(self) -> dict[int, list[TruthBox]]:
        by_frame: dict[int, list[TruthBox]] = {}
        for item in self.truth:
            by_frame.setdefault(item.frame_index, []).append(item)
        return by_frame


def plan_walkby(width: int = 640, height: int = 480, n_people: int = 4, frames_per_person: int = 100,
                overlap: float = 0.5, fps: float = 25.0, n_patches: int = 1, seed: int = 0) -> WalkbyPlan:
    """Who walks when and where. ``overlap`` = share of a lifetime two consecutive walkers share."""
    rng = np.random.default_rng(seed)
    walkers = []
    gap = max(1, int(round(frames_per_person * (1.0 - overlap))))
    for person in range(n_people):
        walkers.append(Walker(
            person_id=person,
            patch_index=person % max(n_patches, 1),
            start_frame=2 + person * gap,
            n_frames=frames_per_person,
            direction=1 if person % 2 == 0 else -1,
            y_frac=float(rng.uniform(0.30, 0.42)),
            size_start=float(rng.uniform(0.17, 0.20)),
            size_end=float(rng.uniform(0.34, 0.40)),
            shirt_bgr=tuple(int(c) for c in rng.integers(40, 220, size=3)),  # type: ignore[arg-type]
        ))
    n_frames = walkers[-1].start_frame + frames_per_person + 3
    plan = WalkbyPlan(width, height, fps, n_frames, walkers, seed)
    plan.truth = [t for frame in range(n_frames) for t in _truth_at(plan, frame)]
    return plan


def _progress(u: float, phases: tuple[tuple[str, float, float], ...] = PHASES) -> float:
    """Share of the horizontal path covered at lifetime share u (speed weights per phase)."""
    total = sum(share * speed for _, share, speed in phases)
    covered, edge = 0.0, 0.0
    for _, share, speed in phases:
        step = min(max(u - edge, 0.0), share)
        covered += step * speed
        edge += share
    return covered / total


@dataclass(frozen=True)
class _Pose:
    cx: float
    cy: float
    size: float  # face box height in pixels
    phase: str
    phase_u: float  # 0..1 inside the current phase


def _pose(walker: Walker, frame_index: int, width: int, height: int) -> _Pose | None:
    phase = walker.phase_at(frame_index)
    if phase is None:
        return None
    u = (frame_index - walker.start_frame) / max(walker.n_frames - 1, 1)
    size = height * (walker.size_start + (walker.size_end - walker.size_start) * min(u / 0.6, 1.0))
    span = width + size * 1.2
    x = -0.6 * size + span * _progress(u, walker.phases)
    cx = x if walker.direction > 0 else width - x
    cy = height * walker.y_frac + 0.15 * (size - height * walker.size_start) + 0.02 * size * math.sin(u * 40.0)
    edge = 0.0
    for name, share, _ in walker.phases:
        if name == phase:
            break
        edge += share
    share = dict((n, s) for n, s, _ in walker.phases)[phase]
    return _Pose(cx, cy, size, phase, min(max((u - edge) / share, 0.0), 1.0))


def _face_box(pose: _Pose) -> np.ndarray:
    half_h = pose.size / 2.0
    half_w = half_h * 0.8
    return np.array([pose.cx - half_w, pose.cy - half_h, pose.cx + half_w, pose.cy + half_h])


def _truth_at(plan: WalkbyPlan, frame_index: int) -> list[TruthBox]:
    poses = [(w, _pose(w, frame_index, plan.width, plan.height)) for w in plan.walkers]
    poses = [(w, p) for w, p in poses if p is not None]
    items = []
    for walker, pose in poses:
        box = _face_box(pose)
        clipped = np.array([max(box[0], 0), max(box[1], 0), min(box[2], plan.width), min(box[3], plan.height)])
        area = (box[2] - box[0]) * (box[3] - box[1])
        inside = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0) / area
        if inside <= 0.0:
            continue
        hidden = 0.0
        for other, other_pose in poses:  # nearer (bigger) faces are drawn over farther ones
            if other is walker or other_pose.size <= pose.size:
                continue
            ob = _face_box(other_pose)
            ix = max(0.0, min(box[2], ob[2]) - max(box[0], ob[0]))
            iy = max(0.0, min(box[3], ob[3]) - max(box[1], ob[1]))
            hidden = max(hidden, ix * iy / area)
        for ox1, ox2 in plan.occluders:  # pillars hide every face behind them, top to bottom
            hidden = max(hidden, max(0.0, min(box[2], ox2) - max(box[0], ox1)) / max(box[2] - box[0], 1e-9))
        turned_away = (pose.phase == "turn" and pose.phase_u > 0.5) or pose.phase == "leave"
        visible = inside >= 0.8 and hidden < 0.3 and not turned_away
        items.append(TruthBox(frame_index, walker.person_id, Box(*[float(v) for v in clipped]), pose.phase, visible))
    return items


def face_patches(images_bgr: Sequence[np.ndarray], detector, min_face_px: int = 48, margin: float = 0.7) -> list[FacePatch]:
    """Cut a patch around every face the detector finds (face plus ``margin`` on each side)."""
    patches = []
    for image in images_bgr:
        for detection in detector.detect(image):
            box = detection.box
            if min(box.width, box.height) < min_face_px:
                continue
            side = max(box.width, box.height) * (1.0 + 2.0 * margin)
            cx, cy = box.center
            x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
            x2, y2 = int(round(cx + side / 2)), int(round(cy + side / 2))
            h, w = image.shape[:2]
            padded = _pad_to(image, x1, y1, x2, y2)
            inner = Box(box.x1 - x1, box.y1 - y1, box.x2 - x1, box.y2 - y1)
            if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
                pass  # padding by edge replication keeps the patch square
            patches.append(FacePatch(padded, inner))
    return patches


def _pad_to(image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    top, left = max(0, -y1), max(0, -x1)
    bottom, right = max(0, y2 - h), max(0, x2 - w)
    if top or left or bottom or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
        x1, x2, y1, y2 = x1 + left, x2 + left, y1 + top, y2 + top
    return image[y1:y2, x1:x2].copy()


def _background(width: int, height: int, seed: int) -> np.ndarray:
    """A corridor: wall gradient, floor, a few doors and posters, fixed per seed."""
    import cv2

    rng = np.random.default_rng(seed + 1000)
    wall = np.linspace(150, 205, height, dtype=np.float32)[:, None, None] * np.array([0.92, 1.0, 1.05], np.float32)
    image = np.broadcast_to(wall, (height, width, 3)).copy()
    floor_y = int(height * 0.78)
    image[floor_y:] = np.array([95, 105, 115], np.float32)
    for _ in range(4):
        x = int(rng.uniform(0, width * 0.9))
        w = int(rng.uniform(0.06, 0.14) * width)
        top = int(rng.uniform(0.15, 0.35) * height)
        color = rng.uniform(60, 200, size=3)
        cv2.rectangle(image, (x, top), (x + w, floor_y), color.tolist(), -1)
    for x in range(0, width, max(width // 8, 1)):
        cv2.line(image, (x, floor_y), (width // 2 + (x - width // 2) * 3, height), (80, 88, 96), 1)
    image += rng.normal(0, 3.0, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255)


def _render_person(canvas: np.ndarray, walker: Walker, pose: _Pose, patch: FacePatch) -> None:
    import cv2

    size = pose.size
    # Torso first, under the head.
    body_top = pose.cy + 0.55 * size
    cv2.ellipse(canvas, (int(pose.cx), int(body_top + 1.3 * size)), (int(0.95 * size), int(1.4 * size)), 0, 0, 360,
                [float(c) for c in walker.shirt_bgr], -1)
    # Scale the patch so its face box is `size` pixels high.
    scale = size / max(patch.face_box.height, 1.0)
    ph, pw = patch.image_bgr.shape[:2]
    out_w, out_h = max(int(round(pw * scale)), 2), max(int(round(ph * scale)), 2)
    head = cv2.resize(patch.image_bgr, (out_w, out_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR).astype(np.float32)
    fx1, fy1 = patch.face_box.x1 * scale, patch.face_box.y1 * scale
    fx2, fy2 = patch.face_box.x2 * scale, patch.face_box.y2 * scale
    mask = np.zeros((out_h, out_w), np.float32)
    cv2.ellipse(mask, (int((fx1 + fx2) / 2), int((fy1 + fy2) / 2 - 0.08 * size)),
                (int(0.75 * (fx2 - fx1)), int(0.78 * (fy2 - fy1))), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(size * 0.06, 1.0))
    if pose.phase == "shade":
        head *= 1.0 - 0.7 * math.sin(math.pi * pose.phase_u)  # darkest in the middle of the shade
    if pose.phase == "blur":
        length = max(int(0.35 * size * math.sin(math.pi * pose.phase_u)), 1)
        if length > 1:
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1.0 / length
            head = cv2.filter2D(head, -1, kernel)
    if pose.phase in ("turn", "leave", "yaw"):
        turned = pose.phase_u if pose.phase == "turn" else 1.0  # leaves with the back to the camera
        squeeze = 1.0 - 0.65 * turned
        cover_share = 0.35 + 0.65 * turned
        if pose.phase == "yaw":  # turns the head aside and back while walking on, sharp and lit
            turned = math.sin(math.pi * pose.phase_u)
            squeeze, cover_share = 1.0 - 0.45 * turned, 0.4 * turned
        new_w = max(int(out_w * squeeze), 2)
        head = cv2.resize(head, (new_w, out_h), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (new_w, out_h), interpolation=cv2.INTER_AREA)
        # Hair covers the face from the side the person turns to.
        hair = np.zeros_like(mask)
        cover = int(new_w * cover_share)
        if walker.direction > 0:
            hair[:, new_w - cover:] = 1.0
        else:
            hair[:, :cover] = 1.0
        hair = cv2.GaussianBlur(hair, (0, 0), max(size * 0.05, 1.0)) * mask
        head = head * (1 - hair[..., None]) + np.array([30, 35, 45], np.float32) * hair[..., None]
        fx1, fx2 = fx1 * squeeze, fx2 * squeeze
        out_w = new_w
    # Place so that the face box centre lands on (cx, cy).
    ox = int(round(pose.cx - (fx1 + fx2) / 2))
    oy = int(round(pose.cy - (fy1 + fy2) / 2))
    h, w = canvas.shape[:2]
    x1, y1, x2, y2 = max(ox, 0), max(oy, 0), min(ox + out_w, w), min(oy + out_h, h)
    if x2 <= x1 or y2 <= y1:
        return
    region = head[y1 - oy:y2 - oy, x1 - ox:x2 - ox]
    alpha = mask[y1 - oy:y2 - oy, x1 - ox:x2 - ox, None]
    canvas[y1:y2, x1:x2] = canvas[y1:y2, x1:x2] * (1 - alpha) + region * alpha


def render_frames(plan: WalkbyPlan, patches: Sequence[FacePatch]) -> Iterator[np.ndarray]:
    """The plan's frames, BGR uint8, in order."""
    if not patches:
        raise ValueError("no face patches to compose a walk-by from")
    background = _background(plan.width, plan.height, plan.seed)
    noise_rng = np.random.default_rng(plan.seed + 7)
    # Sensor noise: a few fixed noise fields, cycled (drawing a new one per frame costs more
    # than composing the frame).
    noise = [noise_rng.normal(0, 2.0, size=background.shape).astype(np.float32) for _ in range(5)]
    dark_rng = np.random.default_rng(plan.seed + 11)
    for frame_index in range(plan.n_frames):
        canvas = background + noise[frame_index % len(noise)]
        poses = [(w, _pose(w, frame_index, plan.width, plan.height)) for w in plan.walkers]
        for walker, pose in sorted([(w, p) for w, p in poses if p is not None], key=lambda wp: wp[1].size):
            _render_person(canvas, walker, pose, patches[walker.patch_index % len(patches)])
        for x1, x2 in plan.occluders:  # a pillar in front of everyone
            canvas[:, max(int(x1), 0):max(int(x2), 0)] = np.array([70, 90, 110], np.float32)
            canvas[:, max(int(x1), 0):max(int(x1) + 3, 0)] = np.array([40, 50, 60], np.float32)
        if plan.gain != 1.0:
            canvas *= plan.gain
        if plan.low_light_noise > 0:  # fresh every frame: a dark sensor's noise does not repeat
            canvas += dark_rng.normal(0, plan.low_light_noise, size=canvas.shape).astype(np.float32)
        yield np.clip(canvas, 0, 255).astype(np.uint8)


def write_video(plan: WalkbyPlan, patches: Sequence[FacePatch], path: Path) -> Path:
    """Write the walk-by as a video file (MJPG in .avi, mp4v otherwise)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, plan.fps, (plan.width, plan.height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video {path}")
    try:
        for frame in render_frames(plan, patches):
            writer.write(frame)
    finally:
        writer.release()
    return path


class TruthDetector:
    """A "detector" that reports the composed faces: the pipeline without a detector's errors.

    Frames are recognised by their index (call ``detect`` once per frame, in order, as the
    pipeline does). Only faces a detector should see (``visible``) are reported.
    """

    name = "walkby-truth"

    def __init__(self, plan: WalkbyPlan) -> None:
        self._by_frame = plan.truth_by_frame()
        self._next = 0

    def detect(self, image_bgr: np.ndarray) -> list:
        from snapseal.daemon.types import Detection

        frame, self._next = self._next, self._next + 1
        found = []
        for truth in self._by_frame.get(frame, []):
            if not truth.visible:
                continue
            b = truth.box
            eyes_y = b.y1 + 0.4 * b.height
            landmarks = np.array([[b.x1 + 0.3 * b.width, eyes_y], [b.x1 + 0.7 * b.width, eyes_y],
                                  [b.x1 + 0.5 * b.width, b.y1 + 0.6 * b.height],
                                  [b.x1 + 0.35 * b.width, b.y1 + 0.8 * b.height],
                                  [b.x1 + 0.65 * b.width, b.y1 + 0.8 * b.height]], np.float32)
            found.append(Detection(b, landmarks, 0.99))
        return found


def synthetic_face_patch(size: int = 160, seed: int = 0) -> FacePatch:
    """A drawn face (skin oval, eyes, brows, mouth, hair) for tests that need no real photo."""
    import cv2

    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 120, np.uint8)
    c = size // 2
    skin = tuple(int(v) for v in rng.integers(120, 210, size=3))
    cv2.ellipse(image, (c, c - size // 10), (int(size * 0.3), int(size * 0.36)), 0, 0, 360, (40, 40, 60), -1)  # hair
    cv2.ellipse(image, (c, c), (int(size * 0.25), int(size * 0.32)), 0, 0, 360, skin, -1)
    for dx in (-1, 1):
        eye = (c + dx * int(size * 0.1), c - int(size * 0.06))
        cv2.ellipse(image, eye, (int(size * 0.05), int(size * 0.025)), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(image, eye, int(size * 0.02), (30, 20, 20), -1)
        cv2.line(image, (eye[0] - int(size * 0.05), eye[1] - int(size * 0.05)),
                 (eye[0] + int(size * 0.05), eye[1] - int(size * 0.06)), (40, 40, 50), 2)
    cv2.line(image, (c, c - int(size * 0.02)), (c - int(size * 0.02), c + int(size * 0.08)), (90, 100, 140), 2)
    cv2.ellipse(image, (c, c + int(size * 0.16)), (int(size * 0.08), int(size * 0.03)), 0, 0, 180, (60, 60, 150), 2)
    half = size * 0.3
    return FacePatch(image, Box(c - half * 0.85, c - half, c + half * 0.85, c + half))
