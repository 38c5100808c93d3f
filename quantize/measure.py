"""The issue's "Measure" list, printed and written to build/measure/quality.{json,md}.

    python -m snapseal.quantize.measure [--bundle DIR] [--float-checkpoint PT] [--val-dir DIR]
    make measure

1. parameters, weight memory at the chosen bits, training time (from the bundle's manifest);
2. quantized (bundle, emulate backend) vs float model: Spearman rho of scores on held-out crops;
3. degradation ranking on held-out real faces (identity-disjoint from training): fraction of
   correctly ordered (clean, degraded) pairs per degradation for the paper's score, the default
   score, Laplacian variance and BRISQUE side by side;
4. scoring speed, crops/s: emulate graph vs float model (and the cpu backend), one run, with
   ratios side by side.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.quantize import degrade as dg
from snapseal.quantize import ranking

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VAL_DIR = REPO_ROOT / "build" / "data" / "bootstrap"
DEFAULT_ASSETS_DIR = REPO_ROOT / "build" / "assets"
DEFAULT_OUT = REPO_ROOT / "build" / "measure"


# ---------------------------------------------------------------------------------------------
# Held-out faces as degradable regions


def load_val_regions(val_dir: str | Path = DEFAULT_VAL_DIR, assets_dir: str | Path = DEFAULT_ASSETS_DIR) -> tuple[list[dg.FaceRegion], list[str]]:
    """The validation faces (identity-disjoint from training) as clean regions with a margin.

    Re-cut from the source frame at twice the crop's field of view (the crop is the centre
    half), so blur and downscale act on real pixels before the final downscale and an
    off-centre crop shows real surroundings. Falls back to the 128-px region (same framing as
    the crop; off-centre then repeats the border) when the frame is not at hand.
    """
    from snapseal.daemon.crop import face_region
    from snapseal.daemon.types import Box, Detection

    path = Path(val_dir) / "val_sources.npz"
    if not path.is_file():
        raise SnapsealError(f"{path}: validation regions missing (run `make data`)")
    with np.load(path) as data:
        regions128 = data["regions"]
        frame_paths = [str(p) for p in data["frame_path"]]
        frame_index = data["frame_index"]
        boxes, landmarks = data["boxes"], data["landmarks"]
        identities = [str(i) for i in data["identity"]]
        variant = str(data["variant"])
    out: list[dg.FaceRegion] = []
    frames: dict[tuple[str, int], np.ndarray | None] = {}
    for i in range(len(regions128)):
        key = (frame_paths[i], int(frame_index[i]))
        if key not in frames:
            frames[key] = _read_frame(Path(assets_dir) / key[0], key[1])
        frame = frames[key]
        if frame is None or variant != "box":
            side = float(regions128[i].shape[0])
            out.append(dg.FaceRegion(regions128[i], (0.0, 0.0, side, side)))
            continue
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        wide = Detection(Box(cx - w, cy - h, cx + w, cy + h), np.asarray(landmarks[i], np.float32), 1.0)
        size = 2 * regions128[i].shape[0]
        out.append(dg.FaceRegion(face_region(frame, wide, "box", size), (size / 4, size / 4, 3 * size / 4, 3 * size / 4)))
    return out, identities


def _read_frame(path: Path, index: int) -> np.ndarray | None:
    import cv2

    if not path.is_file():
        return None
    if index < 0:
        return cv2.imread(str(path), cv2.IMREAD_COLOR)
    capture = cv2.VideoCapture(str(path))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        return frame if ok else None
    finally:
        capture.release()


def load_nonface_crops(
    val_dir: str | Path = DEFAULT_VAL_DIR, assets_dir: str | Path = DEFAULT_ASSETS_DIR, per_frame: int = 8, seed: int = 0
) -> np.ndarray:
    """Background windows of the validation frames, cropped like faces (a detector's false
    positives): N x 64 x 64 uint8. Windows overlapping a known face box are skipped."""
    from snapseal.daemon.crop import face_region, region_to_crop
    from snapseal.daemon.types import Box, Detection

    with np.load(Path(val_dir) / "val_sources.npz") as data:
        frame_paths = [str(p) for p in data["frame_path"]]
        frame_index = data["frame_index"]
        boxes = data["boxes"]
    rng = np.random.default_rng(seed)
    crops = []
    for key in sorted(set(zip(frame_paths, (int(i) for i in frame_index)))):
        frame = _read_frame(Path(assets_dir) / key[0], key[1])
        if frame is None:
            continue
        faces = boxes[[i for i, k in enumerate(zip(frame_paths, frame_index)) if (k[0], int(k[1])) == key]]
        sides = faces[:, 2] - faces[:, 0]
        h, w = frame.shape[:2]
        found, tries = 0, 0
        while found < per_frame and tries < 200:
            tries += 1
            side = float(rng.choice(sides)) * rng.uniform(0.8, 1.2)
            x1, y1 = rng.uniform(0, max(1.0, w - side)), rng.uniform(0, max(1.0, h - side))
            window = np.array([x1, y1, x1 + side, y1 + side])
            if _overlaps_any(window, faces):
                continue
            detection = Detection(Box(*window.tolist()), np.zeros((5, 2), np.float32), 1.0)
            crops.append(region_to_crop(face_region(frame, detection, "box")))
            found += 1
    return np.stack(crops).astype(np.uint8) if crops else np.zeros((0, 64, 64), np.uint8)


def _overlaps_any(window: np.ndarray, boxes: np.ndarray) -> bool:
    # the crop is the window grown by the crop margin: keep well clear of every face
    grow = 0.5 * (window[2] - window[0])
    wx1, wy1, wx2, wy2 = window[0] - grow, window[1] - grow, window[2] + grow, window[3] + grow
    for bx1, by1, bx2, by2 in boxes:
        if wx1 < bx2 and bx1 < wx2 and wy1 < by2 and by1 < wy2:
            return True
    return False


def face_vs_nonface(scores_faces: np.ndarray, scores_nonfaces: np.ndarray) -> float:
    """Fraction of (clean face, background window) pairs where the face scores higher."""
    if len(scores_faces) == 0 or len(scores_nonfaces) == 0:
        return float("nan")
    diff = np.asarray(scores_faces, np.float64)[:, None] - np.asarray(scores_nonfaces, np.float64)[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def load_ranking_set(val_dir: str | Path | None = None, seed: int = 0, progress: bool = True) -> ranking.RankingSet:
    regions, identities = load_val_regions(val_dir or DEFAULT_VAL_DIR)
    return ranking.build_ranking_set(regions, identities, seed=seed, progress=progress)


# ---------------------------------------------------------------------------------------------
# Models


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", help="bundle directory (default: the committed default bundle)")
    parser.add_argument("--backend", default="emulate", choices=("emulate", "cpu"), help="bundle backend (default %(default)s)")
    parser.add_argument("--checkpoint", help="score with a torch checkpoint instead of a bundle (research)")
    parser.add_argument("--val", "--val-dir", dest="val", default=str(DEFAULT_VAL_DIR), help="bootstrap data dir with val_sources.npz")
    parser.add_argument("--seed", type=int, default=0, help="degradation seed (default %(default)s)")


def open_model(args: argparse.Namespace):
    """(accelerator, epsilon table, label) for --checkpoint or --bundle/--backend."""
    from snapseal.daemon.accel import make_accelerator
    from snapseal.daemon.bundle import load_bundle
    from snapseal.daemon.scoring.likelihood import epsilon_table

    if getattr(args, "checkpoint", None):
        from snapseal.quantize.score_candidates import TorchAccelerator

        accel = TorchAccelerator(args.checkpoint)
        return accel, epsilon_table(accel.model.cfg.latent_dim), f"checkpoint {args.checkpoint}"
    bundle = load_bundle(args.bundle)
    return make_accelerator(args.backend, bundle), bundle.epsilon, f"bundle {bundle.model_id} ({args.backend})"
