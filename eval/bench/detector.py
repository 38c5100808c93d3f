"""Detector speed on one 640x480 frame, per backend and thread count (a benchmark, not a test).

    python -m snapseal.eval.bench.detector [--image FILE] [--repeats 20] [--min-face-px 40]

Without --image it uses a uniform-noise frame (the
pyramid costs the same; only R-/O-Net work depends on content). Prints one line per setting:
median ms per frame and the number of faces found.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from snapseal.daemon.detect.mtcnn import BACKENDS, MtcnnDetector
from snapseal.daemon.errors import SnapsealError


def _frame(path: str | None) -> np.ndarray:
    if path is None:
        return np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SnapsealError(f"cannot read image {path}")
    return cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="a real photo, resized to 640x480")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--min-face-px", type=float, default=40)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    frame = _frame(args.image)
    for threads in args.threads:
        cv2.setNumThreads(threads)  # cv2.dnn's threads are process-wide
        for backend in BACKENDS:
            detector = MtcnnDetector(min_face_px=args.min_face_px, backend=backend, num_threads=threads)
            faces = len(detector.detect(frame))  # warm-up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                detector.detect(frame)
                times.append(time.perf_counter() - start)
            print(f"{backend:12s} threads={threads}  {1000 * statistics.median(times):7.1f} ms/frame "
                  f"(min {1000 * min(times):.1f})  faces={faces}  640x480 min_face_px={args.min_face_px:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
