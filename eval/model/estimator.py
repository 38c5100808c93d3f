"""Which RP estimator the FPGA computes, by measurement, against the paper's L=10 reference.

Candidates: ``at_mean`` (one decoder pass at z = mu_z: what one bitstream computes) and
``encoder_only`` (-KL, no decoder at all). Two kinds of "tracks":

* ``--synthetic`` (default): each held-out val crop with 9 degraded copies (blur / noise /
  darkening, 3 levels) = one track of 10 crops;
* ``--video``: real tracks: the daemon's detector (MTCNN), crop and IoU tracker on the
  carphone video (one real person, 120 frames) and on rendered walk-by videos
  (``eval/scenes/walkby.py``, real face photos, 4 people each). Long tracks are also cut into
  windows of ``--window`` consecutive crops (what the daemon compares when many people pass).

Printed: Spearman rho vs L=10 over all crops, and the rate at which each estimator picks the
same best crop per track (and per window) as L=10.

    python -m snapseal.eval.model.estimator [--video [--walkby-seeds 2] [--window 10]]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

VAL = Path("build/data/bootstrap/val.npz")


def synthetic_tracks(val_path: Path = VAL) -> list[np.ndarray]:
    import cv2

    val = np.load(val_path)["crops"]
    rng = np.random.default_rng(0)
    tracks = []
    for crop in val:
        track = [crop]
        track += [cv2.GaussianBlur(crop, (k, k), 0) for k in (3, 7, 11)]
        track += [np.clip(crop + rng.normal(0, s, crop.shape), 0, 255).astype(np.uint8) for s in (8, 20, 40)]
        track += [(crop * f).astype(np.uint8) for f in (0.7, 0.45, 0.25)]
        tracks.append(np.stack(track))
    return tracks


def video_tracks(frames, detector, min_length: int = 5) -> list[np.ndarray]:
    """Crops per track (IoU tracker, the daemon's default kind) from an iterable of BGR frames."""
    from snapseal.daemon.crop import crop_face
    from snapseal.daemon.track import make_tracker

    tracker = make_tracker("iou", max_age_frames=15, min_length_frames=min_length)
    crops_by_track: dict[int, list[np.ndarray]] = {}
    for index, frame in enumerate(frames):
        detections = detector.detect(frame)
        step = tracker.update(detections, index)
        for detection, track_id in zip(detections, step.track_ids):
            crops_by_track.setdefault(track_id, []).append(crop_face(frame, detection))
    return [np.stack(c) for c in crops_by_track.values() if len(c) >= min_length]


def read_video(path: Path):
    from snapseal.daemon.capture import read_video_frames

    return read_video_frames(path)


def real_video_tracks(walkby_seeds: int) -> dict[str, list[np.ndarray]]:
    from snapseal.eval.scenes.assets import carphone_path, load_face_patches
    from snapseal.eval.scenes.walkby import plan_walkby, render_frames
    from snapseal.daemon.detect import make_detector

    detector = make_detector(min_face_px=40, confidence=0.9)
    sources = {"carphone": video_tracks(read_video(carphone_path()), make_detector(min_face_px=20, confidence=0.9))}
    if walkby_seeds:
        patches = load_face_patches(detector)
        walkby = []
        for seed in range(walkby_seeds):
            plan = plan_walkby(640, 480, n_people=4, frames_per_person=90, n_patches=len(patches), seed=seed)
            walkby += video_tracks(render_frames(plan, patches), detector)
        sources["walkby"] = walkby
    return sources


def same_best_rate(scores: np.ndarray, reference: np.ndarray, groups: list[np.ndarray]) -> float:
    """Share of groups (index arrays) where argmax of ``scores`` == argmax of ``reference``."""
    return float(np.mean([np.argmax(scores[g]) == np.argmax(reference[g]) for g in groups])) if groups else float("nan")


def pick_rank(scores: np.ndarray, reference: np.ndarray, groups: list[np.ndarray]) -> float:
    """Mean position (0 = reference's best, 1 = its worst) of each group's pick in the
    reference ranking: how much the picks disagree when they are not the same crop."""
    positions = []
    for g in groups:
        order = np.argsort(-reference[g], kind="stable")
        rank = int(np.nonzero(order == np.argmax(scores[g]))[0][0])
        positions.append(rank / max(len(g) - 1, 1))
    return float(np.mean(positions)) if positions else float("nan")


def score_all(crops: np.ndarray) -> dict[str, np.ndarray]:
    from snapseal.daemon.accel.emulate import EmulateAccelerator
    from snapseal.daemon.bundle import load_bundle
    from snapseal.daemon.scoring.likelihood import kl_divergence, log_likelihood_at_mean, log_rp

    bundle = load_bundle()
    accel = EmulateAccelerator(bundle)
    started = time.perf_counter()
    latent, dist = accel.forward_at_mean(crops)
    at_mean_s = time.perf_counter() - started
    reference = log_rp(crops, latent, accel.decode, bundle.epsilon)
    print(f"model {bundle.model_id}: {len(crops)} crops, at-mean {at_mean_s:.1f} s, "
          f"L={bundle.epsilon.shape[0]} reference {time.perf_counter() - started - at_mean_s:.1f} s")
    return {"reference": reference, "at_mean": log_likelihood_at_mean(crops, dist), "encoder_only": -kl_divergence(latent)}


def report(name: str, tracks: list[np.ndarray], window: int | None) -> None:
    from scipy.stats import spearmanr

    crops = np.concatenate(tracks)
    scores = score_all(crops)
    bounds = np.cumsum([0] + [len(t) for t in tracks])
    groups = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(tracks))]
    window_groups = [g[i : i + window] for g in groups for i in range(0, len(g) - window + 1, window)] if window else []
    lengths = [len(t) for t in tracks]
    print(f"{name}: {len(tracks)} tracks, {len(crops)} crops (track length {min(lengths)}-{max(lengths)})")
    for estimator in ("at_mean", "encoder_only"):
        rho = spearmanr(scores[estimator], scores["reference"]).correlation
        line = (f"  {estimator}: spearman vs L=10 {rho:.4f}; same best crop per track "
                f"{same_best_rate(scores[estimator], scores['reference'], groups):.3f} ({len(groups)} tracks, "
                f"pick's L=10 rank position {pick_rank(scores[estimator], scores['reference'], groups):.3f})")
        if window_groups:
            line += (f"; per {window}-crop window "
                     f"{same_best_rate(scores[estimator], scores['reference'], window_groups):.3f} ({len(window_groups)} windows, "
                     f"rank position {pick_rank(scores[estimator], scores['reference'], window_groups):.3f}, "
                     f"chance {1 / window:.2f})")
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.model.estimator", description=__doc__.splitlines()[0])
    parser.add_argument("--video", action="store_true", help="real tracks from videos instead of degraded copies")
    parser.add_argument("--walkby-seeds", type=int, default=2, help="rendered walk-by videos (0 = carphone only)")
    parser.add_argument("--window", type=int, default=10, help="also compare per window of this many crops")
    args = parser.parse_args(argv)
    if not args.video:
        report("synthetic (val crop + 9 degraded copies)", synthetic_tracks(), None)
        return 0
    started = time.perf_counter()
    sources = real_video_tracks(args.walkby_seeds)
    print(f"detect + track: {time.perf_counter() - started:.0f} s")
    for name, tracks in sources.items():
        if tracks:
            report(name, tracks, args.window)
        else:
            print(f"{name}: no track of >= 5 crops")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
