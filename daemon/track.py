"""Track: link each frame's detections to the people seen in earlier frames.

Two trackers behind one interface (``Tracker``):

- ``DistanceTracker`` — the paper's: a detection continues the track whose last box centre is
  nearest, if closer than ``max_distance`` box sizes. No motion model.
- ``IouTracker`` — SORT/ByteTrack-style: a constant-velocity Kalman filter predicts every
  track's box in the current frame; detections are matched greedily by IoU with the
  prediction, then leftovers by centre distance to the prediction (fast motion, low fps).

Both end a track after ``max_age_frames`` frames without a match; a track with fewer than
``min_length_frames`` matched frames is reported but marked short (it yields no record).
Which one is the default was chosen by measurement (``python -m snapseal.eval.scenes.track_eval
--video``, walk-bys with known ground truth): over 20 seeds x 4 simulated scenarios the IoU
tracker gave 355 of 360 people exactly one record against 253 for the distance tracker, with
59 identity switches against 359 and 5 tracks holding any detection of another person
("mixed") against 218; with MTCNN on the demo's 3 walk-by videos (seeds 0, 1, 2) both gave all
15 people exactly one record, the IoU tracker with 0 identity switches and 0 mixed tracks
against 12 and 9. Default: ``iou``. (Before the crossing fixes in ``IouTracker`` -- size gate in
the IoU stage, size held while unseen, motion gate and widening reach in the fallback -- the
IoU tracker gave 341 of 360, 66 switches, 38 mixed; on video 14 of 15, 4 switches, 3 mixed:
a walker's record showed another walker's face.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from snapseal.daemon.types import Detection


@dataclass(frozen=True)
class TrackInfo:
    """A track as the rest of the pipeline sees it when it ends."""

    track_id: int
    first_frame: int
    last_frame: int
    hits: int  # frames with a matched detection
    long_enough: bool  # hits >= min_length_frames: such a track always yields a record


@dataclass(frozen=True)
class TrackerStep:
    track_ids: list[int]  # the track id of each input detection, in input order
    ended: list[TrackInfo]  # tracks that ended at this frame (too long without a match)


class Tracker(Protocol):
    name: str

    def update(self, detections: Sequence[Detection], frame_index: int,
               frame_size: tuple[int, int] | None = None) -> TrackerStep:
        """``frame_size`` (width, height), when known, lets a tracker tell a face coming in at
        the frame's edge from one re-appearing inside it."""
        ...

    def finish(self) -> list[TrackInfo]:
        """End every open track (end of the source, or shutdown)."""
        ...

    def open_tracks(self) -> list[TrackInfo]: ...

    def predicted_boxes(self, frame_index: int, seen_within: int) -> np.ndarray:
        """Where the tracks matched in the last ``seen_within`` frames are expected at
        ``frame_index`` (N x 4; x1 y1 x2 y2): what the detection schedule looks at between full
        detections. Calling it before ``update`` of the same frame changes no matching."""
        ...

    def predicted_tracks(self, frame_index: int, seen_within: int) -> np.ndarray:
        """The same tracks as ``predicted_boxes``, one row each: predicted box (4), last matched
        box (4), frames since the last match, matched frames so far -> N x 10."""
        ...


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two box arrays (N x 4, M x 4; x1 y1 x2 y2) -> N x M."""
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros((len(boxes_a), len(boxes_b)))
    x1 = np.maximum(boxes_a[:, None, 0], boxes_b[None, :, 0])
    y1 = np.maximum(boxes_a[:, None, 1], boxes_b[None, :, 1])
    x2 = np.minimum(boxes_a[:, None, 2], boxes_b[None, :, 2])
    y2 = np.minimum(boxes_a[:, None, 3], boxes_b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def normalized_center_distance(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Centre distance divided by the larger of the two boxes' sizes -> N x M."""
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros((len(boxes_a), len(boxes_b)))
    ca = (boxes_a[:, :2] + boxes_a[:, 2:]) / 2.0
    cb = (boxes_b[:, :2] + boxes_b[:, 2:]) / 2.0
    size_a = np.maximum(boxes_a[:, 2] - boxes_a[:, 0], boxes_a[:, 3] - boxes_a[:, 1])
    size_b = np.maximum(boxes_b[:, 2] - boxes_b[:, 0], boxes_b[:, 3] - boxes_b[:, 1])
    dist = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)
    return dist / np.maximum(np.maximum(size_a[:, None], size_b[None, :]), 1e-9)


def size_ratio(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise ratio larger/smaller of the box sizes (max of width, height) -> N x M (>= 1)."""
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.ones((len(boxes_a), len(boxes_b)))
    size_a = np.maximum(boxes_a[:, 2] - boxes_a[:, 0], boxes_a[:, 3] - boxes_a[:, 1])[:, None]
    size_b = np.maximum(boxes_b[:, 2] - boxes_b[:, 0], boxes_b[:, 3] - boxes_b[:, 1])[None, :]
    return np.maximum(size_a, size_b) / np.maximum(np.minimum(size_a, size_b), 1e-9)


def greedy_match(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    """Pairs (row, col) by increasing cost, each row and column used once, cost <= max_cost.

    With a handful of faces per frame greedy gives the same pairs as the Hungarian method in
    practice, without a scipy dependency on the camera.
    """
    pairs: list[tuple[int, int]] = []
    if cost.size == 0:
        return pairs
    order = np.argsort(cost, axis=None, kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for flat in order:
        row, col = divmod(int(flat), cost.shape[1])
        if not cost[row, col] <= max_cost:  # also stops at inf / NaN
            break
        if row in used_rows or col in used_cols:
            continue
        pairs.append((row, col))
        used_rows.add(row)
        used_cols.add(col)
    return pairs


def box_array(detections: Sequence[Detection]) -> np.ndarray:
    return np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in detections], dtype=np.float64).reshape(-1, 4)


class _TrackState:
    """Bookkeeping shared by both trackers."""

    def __init__(self, track_id: int, box: np.ndarray, frame_index: int) -> None:
        self.track_id = track_id
        self.box = box  # last matched box
        self.first_frame = frame_index
        self.last_frame = frame_index
        self.hits = 1

    def info(self, min_length: int) -> TrackInfo:
        return TrackInfo(self.track_id, self.first_frame, self.last_frame, self.hits, self.hits >= min_length)


class DistanceTracker:
    """The paper's tracker: nearest box centre between consecutive frames."""

    name = "distance"

    def __init__(self, max_age_frames: int = 15, min_length_frames: int = 5, max_distance: float = 1.0) -> None:
        self.max_age = max_age_frames
        self.min_length = min_length_frames
        self.max_distance = max_distance  # in box sizes
        self._tracks: list[_TrackState] = []
        self._next_id = 1

    def update(self, detections: Sequence[Detection], frame_index: int,
               frame_size: tuple[int, int] | None = None) -> TrackerStep:
        boxes = box_array(detections)
        track_boxes = np.array([t.box for t in self._tracks]).reshape(-1, 4)
        pairs = greedy_match(normalized_center_distance(track_boxes, boxes), self.max_distance)
        track_ids = [0] * len(detections)
        for t_index, d_index in pairs:
            track = self._tracks[t_index]
            track.box = boxes[d_index]
            track.last_frame = frame_index
            track.hits += 1
            track_ids[d_index] = track.track_id
        for d_index in range(len(detections)):
            if track_ids[d_index] == 0:
                track = _TrackState(self._next_id, boxes[d_index], frame_index)
                self._next_id += 1
                self._tracks.append(track)
                track_ids[d_index] = track.track_id
        return TrackerStep(track_ids, self._expire(frame_index))

    def _expire(self, frame_index: int) -> list[TrackInfo]:
        ended = [t for t in self._tracks if frame_index - t.last_frame > self.max_age]
        self._tracks = [t for t in self._tracks if frame_index - t.last_frame <= self.max_age]
        return [t.info(self.min_length) for t in ended]

    def finish(self) -> list[TrackInfo]:
        ended = [t.info(self.min_length) for t in self._tracks]
        self._tracks = []
        return ended

    def open_tracks(self) -> list[TrackInfo]:
        return [t.info(self.min_length) for t in self._tracks]

    def predicted_boxes(self, frame_index: int, seen_within: int) -> np.ndarray:
        """No motion model: a face is expected where it was last seen."""
        return np.array([t.box for t in self._tracks if frame_index - t.last_frame <= seen_within]).reshape(-1, 4)

    def predicted_tracks(self, frame_index: int, seen_within: int) -> np.ndarray:
        rows = [np.concatenate([t.box, t.box, [frame_index - t.last_frame, t.hits]]) for t in self._tracks
                if frame_index - t.last_frame <= seen_within]
        return np.array(rows, dtype=np.float64).reshape(-1, 10)


class _KalmanBox:
    """Constant-velocity Kalman filter on (cx, cy, w, h) with velocities; one step = one frame.

    A face's scale changes slowly (a walker nearing the camera grows a percent or two per
    frame) while detector box sizes jitter by ~10 %: the size has little process noise and a
    larger measurement noise than the centre, so the state's size is a smoothed size that a
    single bad box (a half-hidden face, a turned head) does not throw off.
    """

    def __init__(self, box: np.ndarray) -> None:
        cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
        w, h = box[2] - box[0], box[3] - box[1]
        self.x = np.array([cx, cy, w, h, 0.0, 0.0, 0.0, 0.0])
        size = max(w, h, 1.0)
        # Uncertain velocity at birth; noise scales with the box size (SORT/ByteTrack practice).
        self.P = np.diag(np.square([0.1 * size, 0.1 * size, 0.1 * size, 0.1 * size, size, size, 0.2 * size, 0.2 * size]))
        self.H = np.hstack([np.eye(4), np.zeros((4, 4))])

    def predict(self, steps: int = 1) -> None:
        steps = max(int(steps), 1)
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * steps
        size = max(self.x[2], self.x[3], 1.0)
        q_pos, q_vel = (0.05 * size) ** 2, (0.02 * size) ** 2  # centre
        q_size, q_growth = (0.01 * size) ** 2, (0.002 * size) ** 2  # width, height
        Q = np.diag([q_pos, q_pos, q_size, q_size, q_vel, q_vel, q_growth, q_growth]) * steps
        self.x = F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = F @ self.P @ F.T + Q

    def correct(self, box: np.ndarray) -> None:
        z = np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0, box[2] - box[0], box[3] - box[1]])
        R = np.diag(np.square(_measurement_noise(max(z[2], z[3], 1.0))))
        S = self.H @ self.P @ self.H.T + R
        K = self.P @ self.H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (z - self.H @ self.x)
        self.P = (np.eye(8) - K @ self.H) @ self.P

    def hold_size(self) -> None:
        """An unseen face keeps its size: a hidden face does not grow into the one in front of it."""
        self.x[6:8] = 0.0

    def centre_d2(self, boxes: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each box centre from the predicted centre -> M."""
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
        sizes = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        r = _measurement_noise(sizes)[0] ** 2
        a, b, c = self.P[0, 0] + r, self.P[0, 1], self.P[1, 1] + r  # innovation covariance [[a b] [b c]]
        dx, dy = centres[:, 0] - self.x[0], centres[:, 1] - self.x[1]
        return (c * dx * dx - 2.0 * b * dx * dy + a * dy * dy) / np.maximum(a * c - b * b, 1e-9)

    def box(self) -> np.ndarray:
        cx, cy, w, h = self.x[:4]
        return np.array([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0])


def _measurement_noise(size):
    """Std of a detector's box (cx, cy, w, h) for a face of ``size`` pixels."""
    return [0.05 * size, 0.05 * size, 0.1 * size, 0.1 * size]


class IouTracker:
    """SORT/ByteTrack-style: Kalman-predicted boxes, IoU matching, then a distance fallback.

    Where paths cross, the faces differ in size (one walker near the camera, one far behind
    it) and the far one is hidden for a while. So: a detection never goes to a track whose
    predicted size differs by more than ``max_size_ratio``, in either stage; an unseen face
    keeps its size (``_KalmanBox.hold_size``) and coasts; the distance fallback also gates on
    the Kalman uncertainty of the predicted centre (squared Mahalanobis distance up to
    ``max_motion_d2``, chi-square 2 dof 99 %) -- a face tracked up to the last frame cannot
    jump half a box against its motion, while a face unseen for a while (it hurried through
    motion blur, undetected) can be found further away: the fallback's reach grows by 10 % of
    ``max_distance`` per missed frame, up to ``lost_reach`` times.

    Re-appearance (a person hidden for seconds behind a pillar or a nearer person): a track
    unseen for more than ``max_age_frames`` is *lost*, not ended; it leaves the two stages
    above, and a detection that no live track takes (one that would start a new track) goes
    back to a lost track when the motion model says it is that person -- its centre within
    ``reid_lateral`` box sizes of the path the track was on (from where it was last seen
    along its last velocity), having moved on at ``reid_speed`` (low, high) times that speed
    for the frames it was gone (a walker slows down, stops or hurries a little; nobody jumps
    back), at about the size it has grown to at its last rate (``reid_size_ratio``). Only a track that was long enough
    to seal is kept lost; it ends ``max_lost_frames`` after it was last seen. A face that first
    shows within half a box of the frame's edge (when ``update`` is given the frame's size) is
    someone coming in, never a re-appearance: a person who turned away and walked out
    is not found again in the next one to enter. A face that stood still is found again near
    where it was.
    """

    name = "iou"

    def __init__(self, max_age_frames: int = 15, min_length_frames: int = 5, min_iou: float = 0.2,
                 max_distance: float = 0.6, max_size_ratio: float = 1.4, coast_frames: int = 8,
                 max_motion_d2: float = 9.21, lost_reach: float = 1.5, max_lost_frames: int = 100,
                 reid_lateral: float = 0.5, reid_speed: tuple[float, float] = (0.15, 1.5),
                 reid_size_ratio: float = 1.2, reid_max_growth: float = 1.25) -> None:
        self.max_age = max_age_frames
        self.min_length = min_length_frames
        self.min_iou = min_iou
        self.max_distance = max_distance  # fallback, in box sizes, to the predicted box
        self.max_size_ratio = max_size_ratio  # a face does not change size much between frames
        self.coast_frames = coast_frames  # frames a lost face keeps its velocity
        self.max_motion_d2 = max_motion_d2
        self.lost_reach = lost_reach
        self.max_lost = max(max_lost_frames, max_age_frames)
        self.reid_lateral = reid_lateral
        self.reid_speed = reid_speed
        self.reid_size_ratio = reid_size_ratio
        self.reid_max_growth = reid_max_growth  # the size extrapolation is trusted this far
        self._velocity: dict[int, np.ndarray] = {}  # (vx, vy, vw, vh) px/frame at the last match
        self._frame_size: tuple[int, int] | None = None  # (width, height) of the frame being tracked
        self._tracks: list[_TrackState] = []
        self._filters: dict[int, _KalmanBox] = {}
        self._predicted_at: dict[int, int] = {}
        self._misses: dict[int, int] = {}  # updates in a row without a match (delivered frames)
        self._next_id = 1

    def _predicted_boxes(self, frame_index: int) -> np.ndarray:
        boxes = []
        for track in self._tracks:
            kf = self._filters[track.track_id]
            steps = frame_index - self._predicted_at[track.track_id]
            if steps > 0:
                # Coasting: a face unseen for a while has most likely stopped, turned or been
                # hidden; flying on at its last speed would hand its track to a passer-by.
                # Frames of this step past the coasting limit are predicted standing still.
                still = min(steps, max(0, frame_index - track.last_frame - self.coast_frames))
                if steps > still:
                    kf.predict(steps - still)
                if still:
                    kf.x[4:] = 0.0
                    kf.predict(still)
                self._predicted_at[track.track_id] = frame_index
            boxes.append(kf.box())
        return np.array(boxes).reshape(-1, 4)

    def update(self, detections: Sequence[Detection], frame_index: int,
               frame_size: tuple[int, int] | None = None) -> TrackerStep:
        boxes = box_array(detections)
        self._frame_size = frame_size
        predicted = self._predicted_boxes(frame_index)
        ious = iou_matrix(predicted, boxes)
        ratios = size_ratio(predicted, boxes)
        # IoU decides; among overlapping faces the one of the predicted size wins (a face near the
        # camera and one far behind it overlap when paths cross, but differ in size).
        cost = 1.0 - ious + 0.5 * (ratios - 1.0)
        cost[(ious < self.min_iou) | (ratios > self.max_size_ratio)] = np.inf
        lost = {i for i, t in enumerate(self._tracks) if frame_index - t.last_frame > self.max_age}
        cost[sorted(lost)] = np.inf  # lost tracks only come back through the re-appearance stage
        pairs = greedy_match(cost, 1e9)
        left_tracks = sorted(set(range(len(self._tracks))) - {t for t, _ in pairs} - lost)
        left_dets = sorted(set(range(len(detections))) - {d for _, d in pairs})
        if left_tracks and left_dets:
            dist = normalized_center_distance(predicted[left_tracks], boxes[left_dets])
            dist[ratios[np.ix_(left_tracks, left_dets)] > self.max_size_ratio] = np.inf
            for row, t_index in enumerate(left_tracks):
                track = self._tracks[t_index]
                dist[row, self._filters[track.track_id].centre_d2(boxes[left_dets]) > self.max_motion_d2] = np.inf
                reach = min(1.0 + 0.1 * self._misses[track.track_id], self.lost_reach)
                dist[row] /= reach
            pairs += [(left_tracks[t], left_dets[d]) for t, d in greedy_match(dist, self.max_distance)]
        revived = self._reappearances(sorted(lost), sorted(set(range(len(detections))) - {d for _, d in pairs}),
                                      boxes, frame_index)
        for t_index, _ in revived:  # the filter restarts where the face is again, with its old velocity
            track = self._tracks[t_index]
            self._filters[track.track_id].x[4:8] = self._velocity.get(track.track_id, np.zeros(4))
        pairs += revived
        track_ids = [0] * len(detections)
        for t_index, d_index in pairs:
            track = self._tracks[t_index]
            self._filters[track.track_id].correct(boxes[d_index])
            gap = max(frame_index - track.last_frame, 1)
            if gap == 1 or track.hits < 2:
                self._velocity[track.track_id] = self._filters[track.track_id].x[4:8].copy()
            track.box = boxes[d_index]
            track.last_frame = frame_index
            track.hits += 1
            track_ids[d_index] = track.track_id
        matched = {self._tracks[t_index].track_id for t_index, _ in pairs}
        for track in self._tracks:
            if track.track_id in matched:
                self._misses[track.track_id] = 0
            else:
                self._misses[track.track_id] += 1
                self._filters[track.track_id].hold_size()
        for d_index in range(len(detections)):
            if track_ids[d_index] == 0:
                track = _TrackState(self._next_id, boxes[d_index], frame_index)
                self._next_id += 1
                self._tracks.append(track)
                self._filters[track.track_id] = _KalmanBox(boxes[d_index])
                self._predicted_at[track.track_id] = frame_index
                self._misses[track.track_id] = 0
                track_ids[d_index] = track.track_id
        return TrackerStep(track_ids, self._expire(frame_index))

    def _reappearances(self, lost: list[int], free: list[int], boxes: np.ndarray,
                       frame_index: int) -> list[tuple[int, int]]:
        """(lost track, detection) pairs the motion model accepts (see the class's doc)."""
        if not lost or not free:
            return []
        centres = (boxes[free, :2] + boxes[free, 2:]) / 2.0
        sizes = np.maximum(boxes[free, 2] - boxes[free, 0], boxes[free, 3] - boxes[free, 1])
        if self._frame_size is not None:  # entering at an edge: a new person, never a re-appearance
            width, height = self._frame_size
            margin = 0.5 * sizes
            inside = ((boxes[free, 0] > margin) & (boxes[free, 1] > margin)
                      & (boxes[free, 2] < width - margin) & (boxes[free, 3] < height - margin))
            keep = [i for i, ok in enumerate(inside) if ok]
            if not keep:
                return []
            free, centres, sizes = [free[i] for i in keep], centres[keep], sizes[keep]
        cost = np.full((len(lost), len(free)), np.inf)
        for row, t_index in enumerate(lost):
            track = self._tracks[t_index]
            last = track.box
            size = max(last[2] - last[0], last[3] - last[1], 1.0)
            origin = (last[:2] + last[2:]) / 2.0
            motion = self._velocity.get(track.track_id, np.zeros(4))
            velocity = motion[:2]
            speed = float(np.hypot(*velocity))
            gap = frame_index - track.last_frame
            # the size it has grown (or shrunk) to at its last rate: a face nearing the camera
            grown = max(last[2] - last[0] + motion[2] * gap, last[3] - last[1] + motion[3] * gap, 1.0)
            expected = min(max(grown, size / self.reid_max_growth), size * self.reid_max_growth)
            offset = centres - origin
            if speed * gap < 0.5 * size:  # it stood still: near where it was
                along, across = np.zeros(len(free)), np.hypot(offset[:, 0], offset[:, 1])
                ok = across <= self.reid_lateral * size
            else:
                direction = velocity / speed
                along = offset @ direction
                across = np.abs(offset @ np.array([-direction[1], direction[0]]))
                low, high = self.reid_speed
                ok = (along >= low * speed * gap) & (along <= high * speed * gap + 0.5 * size)
                ok &= across <= self.reid_lateral * size
            # about its last size, or about the size its last growth leads to (a partly hidden
            # face's last boxes can shrink: either is accepted)
            ratio = np.minimum(np.maximum(sizes, expected) / np.maximum(np.minimum(sizes, expected), 1e-9),
                               np.maximum(sizes, size) / np.maximum(np.minimum(sizes, size), 1e-9))
            ok &= ratio <= self.reid_size_ratio
            cost[row, ok] = (across[ok] / size) + 0.01 * gap
        return [(lost[r], free[c]) for r, c in greedy_match(cost, 1e9)]

    def _expire(self, frame_index: int) -> list[TrackInfo]:
        # Past max_age a track is lost; a short one ends then, a long enough one may come back
        # until max_lost.
        def over(track: _TrackState) -> bool:
            unseen = frame_index - track.last_frame
            if unseen > self.max_lost or (unseen > self.max_age and track.hits < self.min_length):
                return True
            return False

        ended = [t for t in self._tracks if over(t)]
        self._tracks = [t for t in self._tracks if not over(t)]
        for track in ended:
            del self._filters[track.track_id]
            del self._predicted_at[track.track_id]
            del self._misses[track.track_id]
            self._velocity.pop(track.track_id, None)
        return [t.info(self.min_length) for t in ended]

    def finish(self) -> list[TrackInfo]:
        ended = [t.info(self.min_length) for t in self._tracks]
        self._tracks, self._filters, self._predicted_at, self._misses, self._velocity = [], {}, {}, {}, {}
        return ended

    def open_tracks(self) -> list[TrackInfo]:
        return [t.info(self.min_length) for t in self._tracks]

    def predicted_boxes(self, frame_index: int, seen_within: int) -> np.ndarray:
        """The Kalman prediction at ``frame_index`` of every track matched in the last
        ``seen_within`` frames. ``update`` of the same frame predicts to the same frame, so it
        then does not predict again: asking first changes no matching."""
        return self.predicted_tracks(frame_index, seen_within)[:, :4]

    def predicted_tracks(self, frame_index: int, seen_within: int) -> np.ndarray:
        """Prediction, last matched box, frames since the match and matched frames (N x 10)."""
        predicted = self._predicted_boxes(frame_index)
        rows = [np.concatenate([predicted[i], t.box, [frame_index - t.last_frame, t.hits]])
                for i, t in enumerate(self._tracks) if frame_index - t.last_frame <= seen_within]
        return np.array(rows, dtype=np.float64).reshape(-1, 10)


def make_tracker(kind: str, max_age_frames: int, min_length_frames: int, max_lost_frames: int = 100) -> Tracker:
    if kind == "iou":
        return IouTracker(max_age_frames, min_length_frames, max_lost_frames=max_lost_frames)
    if kind == "distance":
        return DistanceTracker(max_age_frames, min_length_frames)
    raise ValueError(f"unknown tracker kind {kind!r}")
