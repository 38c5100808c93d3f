"""Pose-like warps the degradation suite lacks: a turned head (yaw) and a tilted one (roll).

A 2-D warp of a frontal photo is only an approximation of a head turning (no occlusion of the
far cheek, no parallax), which is why these probes are labelled "pose-like". They act on the
face region at source resolution, then the clean crop is cut exactly as for every other probe
(``snapseal.eval.model.degrade.clean_crop``), so the crop geometry is the suite's own.
"""

from __future__ import annotations

import cv2
import numpy as np

from snapseal.eval.model.degrade import FaceRegion, clean_crop

POSE_WARPS: tuple[str, ...] = ("yaw", "roll")
YAW_SQUEEZE = {1: 0.20, 2: 0.35, 3: 0.50}  # the far half of the face narrowed by this fraction
ROLL_DEGREES = {1: 12.0, 2: 24.0, 3: 36.0}


def pose_warp(region: FaceRegion, kind: str, level: int) -> np.ndarray:
    """The 64x64 crop of ``region`` after a yaw-like or roll-like warp of strength 1..3."""
    if kind not in POSE_WARPS:
        raise ValueError(f"unknown pose warp {kind!r}; known: {', '.join(POSE_WARPS)}")
    if level not in YAW_SQUEEZE:
        raise ValueError(f"pose warp level must be 1, 2 or 3, got {level!r}")
    x1, y1, x2, y2 = region.box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    height, width = region.image.shape[:2]
    if kind == "roll":
        matrix = cv2.getRotationMatrix2D((cx, cy), ROLL_DEGREES[level], 1.0)
        warped = cv2.warpAffine(region.image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        return clean_crop(FaceRegion(warped, region.box))
    # yaw: a perspective map that keeps the near edge of the face and pulls the far edge in,
    # shrinking the far edge's height a little too (foreshortening), centre column fixed.
    half = (x2 - x1) / 2.0
    squeeze = YAW_SQUEEZE[level]
    far_x = cx + half * (1.0 - squeeze)
    shrink = 0.5 * squeeze * (y2 - y1) / 2.0
    source = np.float32([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    target = np.float32([[x1 + squeeze * half * 0.5, y1], [far_x, y1 + shrink], [far_x, y2 - shrink],
                         [x1 + squeeze * half * 0.5, y2]])
    matrix = cv2.getPerspectiveTransform(source, target)
    warped = cv2.warpPerspective(region.image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    return clean_crop(FaceRegion(warped, region.box))
