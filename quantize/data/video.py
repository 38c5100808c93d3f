"""Face crops from video files: every n-th frame, every face in it.

A video's people are unknown; all its faces get the identity ``<video stem>`` (one person per
video is the common case for a face video; split by video to keep people apart).
"""

from __future__ import annotations

import os
from typing import Iterator

import cv2

from snapseal.daemon.crop import DEFAULT_VARIANT
from snapseal.daemon.detect import Detector
from snapseal.daemon.errors import SnapsealError
from snapseal.quantize.data.common import (
    DEFAULT_MIN_FACE_PX,
    FaceSample,
    default_detector,
    faces_in_image,
    resolve_path,
)


def iter_video(
    path: str | os.PathLike[str],
    *,
    every_nth: int = 5,
    detector: Detector | None = None,
    variant: str = DEFAULT_VARIANT,
    min_face_px: float = DEFAULT_MIN_FACE_PX,
    max_faces_per_frame: int | None = None,
    identity: str | None = None,
    source: str = "video",
    max_frames: int | None = None,
) -> Iterator[FaceSample]:
    """Faces in frames 0, n, 2n, ... of one video file."""
    if every_nth < 1:
        raise SnapsealError(f"every_nth must be >= 1, got {every_nth}")
    video_path = resolve_path(path, "video file")
    capture = cv2.VideoCapture(str(video_path))
    try:
        if not capture.isOpened():
            raise SnapsealError(f"cannot open video file {video_path}")
        detector = default_detector(detector, min_face_px)
        frame_index = -1
        frames_read = 0
        while max_frames is None or frame_index + 1 < max_frames:
            ok = capture.grab()
            if not ok:
                break
            frame_index += 1
            if frame_index % every_nth:
                continue
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                break
            frames_read += 1
            yield from faces_in_image(
                frame,
                detector,
                identity=identity or video_path.stem,
                source=source,
                origin=f"{video_path}@{frame_index}",
                variant=variant,
                min_face_px=min_face_px,
                max_faces=max_faces_per_frame,
            )
        if frames_read == 0:
            raise SnapsealError(f"no frames could be decoded from video file {video_path}")
    finally:
        capture.release()
