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
