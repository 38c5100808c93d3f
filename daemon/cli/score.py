"""``snapseal score``: the quality score of the largest face in each image, one JSON line each.

    snapseal score [--bundle DIR] [--backend emulate|cpu|fpga] [--scorer NAME] [--crop] IMAGE...

Each line holds at least ``{"path", "score"}``, plus the scorer's name, the bundle's model id,
the box of the face used (frame pixels; null with ``--crop``), the detector's confidence and the
score's components. ``--crop`` scores an image that already is a face crop (converted to gray
and resized to 64x64). A file that is not a readable image, or an image without a face, gets a
line with ``"error"`` instead of a score and the command carries on.

Exit status: 0 when every image was scored, 1 when at least one line holds an error, 2 for a
problem that stops everything (a bad bundle, an unknown scorer or backend).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import CROP_SIZE

DEFAULT_MIN_FACE_PX = 20  # smaller than the daemon's default: a still photo may hold a small face
DEFAULT_CONFIDENCE = 0.9


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score the largest face in each image (one JSON line per image)",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 all scored, 1 some images had errors (see their lines), 2 fatal error.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--bundle", help="accelerator bundle directory (default: the committed default bundle)")
    parser.add_argument("--backend", default="emulate", help="emulate (default), cpu or fpga")
    parser.add_argument("--scorer", help="scorer name, e.g. 'paper' (default: the bundle's default scorer)")
    parser.add_argument("--crop", action="store_true", help="each image already is a face crop: no detection")
    parser.add_argument("--min-face-px", type=float, default=DEFAULT_MIN_FACE_PX, help="smallest face to detect (default %(default)s)")
    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE, help="detector confidence (default %(default)s)")
    parser.add_argument("--runtime", choices=("onnxruntime", "opencv", "ncnn"),
                        help="what runs the detector (default: onnxruntime where it is installed, else OpenCV DNN)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snapseal.daemon.scoring import load_scorer

    scorer = load_scorer(args.bundle, backend=args.backend, scorer=args.scorer)
    detector = None
    failures = 0
    for path in args.images:
        try:
            image = _read_image(Path(path))
            if args.crop:
                crop, box, confidence = _as_crop(image), None, None
            else:
                if detector is None:
                    from snapseal.daemon.detect import make_detector
                    from snapseal.daemon.detect.runtimes import available_runtimes

                    # A board without onnxruntime (the PYNQ-Z2) still scores photos: OpenCV DNN is everywhere.
                    runtime = args.runtime or next((r for r in ("onnxruntime", "opencv") if r in available_runtimes()),
                                                   "onnxruntime")
                    detector = make_detector(min_face_px=args.min_face_px, confidence=args.confidence, backend=runtime)
                crop, box, confidence = _largest_face(image, detector, path)
            line = _score_line(scorer, crop)
            line = {"path": path, **line, "box": box, "confidence": confidence}
        except SnapsealError as error:
            failures += 1
            line = {"path": path, "error": str(error)}
        print(json.dumps(line), flush=True)
    return 1 if failures else 0


def _read_image(path: Path) -> np.ndarray:
    import cv2

    if not path.is_file():
        raise SnapsealError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise SnapsealError(f"{path}: not a readable image")
    return image


def _as_crop(image_bgr: np.ndarray) -> np.ndarray:
    """A whole image taken as the crop: gray, 64x64 (area when shrinking, linear when growing)."""
    import cv2

    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    shrink = gray.shape[0] >= CROP_SIZE and gray.shape[1] >= CROP_SIZE
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(gray, (CROP_SIZE, CROP_SIZE), interpolation=interpolation)


def _largest_face(image_bgr: np.ndarray, detector: Any, path: str) -> tuple[np.ndarray, list[float], float]:
    from snapseal.daemon.crop import crop_face

    detections = detector.detect(image_bgr)
    if not detections:
        raise SnapsealError(f"{path}: no face found")
    largest = max(detections, key=lambda d: d.box.area)
    box = [round(v, 1) for v in largest.box.as_list()]
    return crop_face(image_bgr, largest), box, round(float(largest.confidence), 4)


def _score_line(scorer: Any, crop: np.ndarray) -> dict[str, Any]:
    crops = crop[None]
    components_fn = getattr(scorer, "components", None)
    if components_fn is not None:
        parts = components_fn(crops)
        score = float(parts["score"][0])
        components = {k: _finite(v[0]) for k, v in parts.items() if k != "score"}
    else:
        score = float(scorer.score_batch(crops)[0])
        components = {}
    return {"score": _finite(score), "scorer": scorer.name, "model_id": scorer.model_id, "components": components}


def _finite(value: Any) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


if __name__ == "__main__":  # pragma: no cover
    from snapseal.daemon.cli import main

    sys.exit(main(["score", *sys.argv[1:]]))
