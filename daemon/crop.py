"""Cut a detected face out of its frame as the quality model's input: 64x64 grayscale uint8.

Two crop geometries, both a similarity transform (cv2.warpAffine) from frame to crop:

- ``"box"``: the paper's MTCNN crop: a square around the detection box's centre, side =
  the box's longer side x (1 + ``BOX_MARGIN``), upright.
- ``"aligned"``: rotated so the eyes are level, scaled so the eye distance is fixed and
  translated so the eyes' midpoint sits at a fixed place. The template (``ALIGNED_EYE_*``) is
  the mean eye geometry of MTCNN detections inside ``"box"`` crops (27 faces of the bootstrap
  assets), so both variants frame an average face the same way.

``DEFAULT_VARIANT`` is ``"aligned"``: it keeps the face's landmarks steadier from frame to frame
than the box crop (docs/MODEL_CARD.md, "Data and licences"; ``python -m
snapseal.quantize.data.measure_crops``). Less geometric variance leaves the model's capacity for
appearance.

Every crop is cut at ``REGION_SIZE`` = 128 px and then area-downsampled to 64 px
(``region_to_crop``), so a degradation applied to a 128 px region and then downsampled is
exactly what the daemon would crop from a degraded frame ("degrade, then crop"). Large faces
are area-downsampled before the warp (no aliasing); parts of the crop outside the frame
repeat the frame's border pixels. Degenerate boxes (zero or negative size) give a crop of
the nearest pixels, never an exception; non-finite coordinates are a ``SnapsealError``.

Beside the model crop, ``evidence_images`` cuts what an investigator needs from the same frame:
the face in colour at the camera's resolution with the head around it (the box widened by
``EvidenceSettings.context`` for hair, ears and the head's outline, a little more above the
box than below it), downscaled only to fit ``max_side`` (never upscaled), lossless. Where the
widened box leaves the frame the image is padded with black and marked ``padded`` (never an
exception, never a replicated border that could pass for picture content). Optionally also
the tracked person's region (``person_region``: a body-sized box estimated from the face).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.image import as_bgr
from snapseal.daemon.types import CROP_SIZE, Detection, EvidenceImage, FaceCrop, Frame

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


# Evidence framing, as multiples of the detection box (MTCNN boxes run from the brows to the
# chin and cheek to cheek): the head with its hair sits about 0.6 box heights above the box and
# the chin and neck 0.4 below it at the default context 2.0, ears and hair on both sides.
EVIDENCE_CONTEXT = 2.0  # evidence box side = detection box side x this
EVIDENCE_UPWARD_SHIFT = 0.1  # of the box height: the head's extra is above the face (hair)
EVIDENCE_MAX_SIDE = 320  # pixels, the cap on the evidence image's longer side
PERSON_MAX_SIDE = 640
# The person's region estimated from the face box: shoulders about 3.5 face widths wide, the
# body about 7 face heights below the face's top.
PERSON_WIDTH = 3.5
PERSON_ABOVE = 0.5
PERSON_BELOW = 7.0
PAD_VALUE = 0  # black: padding never looks like picture content


@dataclass(frozen=True)
class EvidenceSettings:
    """How the investigator's images are cut (config keys ``evidence.*``)."""

    max_side: int = EVIDENCE_MAX_SIDE
    context: float = EVIDENCE_CONTEXT
    person_region: bool = False
    person_max_side: int = PERSON_MAX_SIDE

    def __post_init__(self) -> None:
        for key, value in (("max_side", self.max_side), ("person_max_side", self.person_max_side)):
            if not isinstance(value, int) or isinstance(value, bool) or value < CROP_SIZE:
                raise SnapsealError(f"evidence.{key} = {value!r} must be an integer >= {CROP_SIZE} "
                                    f"(the model crop's side): a smaller evidence image would hold less than the model saw")
        if not isinstance(self.context, (int, float)) or not math.isfinite(self.context) or not 1.0 <= self.context <= 8.0:
            raise SnapsealError(f"evidence.context = {self.context!r} must be in [1, 8] (times the face box)")


NO_EVIDENCE = None  # pass as ``evidence=`` to make a model crop only (evaluation, tests)


def evidence_box(detection: Detection, context: float = EVIDENCE_CONTEXT) -> tuple[float, float, float, float]:
    """The face box widened for the head: (x1, y1, x2, y2) in frame pixels, may leave the frame."""
    _check_finite(detection)
    box = detection.box
    width, height = max(box.width, MIN_BOX_SIDE), max(box.height, MIN_BOX_SIDE)
    centre_x, centre_y = box.center
    centre_y -= EVIDENCE_UPWARD_SHIFT * height
    half_w, half_h = context * width / 2.0, context * height / 2.0
    return centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h


def person_box(detection: Detection) -> tuple[float, float, float, float]:
    """A body-sized box below the face (no person detector on the camera): may leave the frame."""
    _check_finite(detection)
    box = detection.box
    width, height = max(box.width, MIN_BOX_SIDE), max(box.height, MIN_BOX_SIDE)
    centre_x = box.center[0]
    return (centre_x - PERSON_WIDTH * width / 2.0, box.y1 - PERSON_ABOVE * height,
            centre_x + PERSON_WIDTH * width / 2.0, box.y1 + PERSON_BELOW * height)


def cut_evidence(image: np.ndarray, frame_box: tuple[float, float, float, float], max_side: int,
                 role: str = "evidence") -> EvidenceImage:
    """The frame's pixels inside ``frame_box`` in colour, downscaled (area) to fit ``max_side`` and
    never upscaled; the part outside the frame padded black and marked. Only the part inside the
    frame is read and resized, so a wild box costs no more memory than the cap."""
    height, width = _check_frame(image).shape[:2]
    if not all(math.isfinite(v) for v in frame_box):
        raise SnapsealError(f"crop: evidence box has non-finite coordinates {list(frame_box)}")
    reach = 4 * max(height, width)  # bounded: a wild box still gives a bounded image
    x1, y1 = (int(min(max(math.floor(v), -reach), reach)) for v in frame_box[:2])
    x2, y2 = (int(min(max(math.ceil(v), -reach), reach)) for v in frame_box[2:])
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    side = max(x2 - x1, y2 - y1)
    scale = min(1.0, max_side / side)
    out_w, out_h = max(1, int(round((x2 - x1) * scale))), max(1, int(round((y2 - y1) * scale)))
    inside = (max(x1, 0), max(y1, 0), min(x2, width), min(y2, height))
    padded = inside != (x1, y1, x2, y2)
    pixels = np.full((out_h, out_w, 3), PAD_VALUE, np.uint8)
    if inside[2] > inside[0] and inside[3] > inside[1]:
        part = as_bgr(image[inside[1]:inside[3], inside[0]:inside[2]], "crop: the frame")
        # where the in-frame part lands in the output (same scale on both axes)
        ox1, oy1 = int(round((inside[0] - x1) * scale)), int(round((inside[1] - y1) * scale))
        ox2, oy2 = int(round((inside[2] - x1) * scale)), int(round((inside[3] - y1) * scale))
        ox2, oy2 = min(max(ox2, ox1 + 1), out_w), min(max(oy2, oy1 + 1), out_h)
        ox1, oy1 = min(ox1, ox2 - 1), min(oy1, oy2 - 1)
        if (ox2 - ox1, oy2 - oy1) != (part.shape[1], part.shape[0]):
            part = cv2.resize(part, (ox2 - ox1, oy2 - oy1), interpolation=cv2.INTER_AREA)
        pixels[oy1:oy2, ox1:ox2] = part
    return EvidenceImage(pixels=np.ascontiguousarray(pixels), role=role, frame_box=(x1, y1, x2, y2),
                         scale=float(scale), padded=padded)


def evidence_images(image: np.ndarray, detection: Detection,
                    settings: EvidenceSettings | None = None) -> tuple[EvidenceImage, ...]:
    """The investigator's images of one detection: the face with context, and optionally the person."""
    settings = settings or EvidenceSettings()
    images = [cut_evidence(image, evidence_box(detection, settings.context), settings.max_side, "evidence")]
    if settings.person_region:  # the frame's part of the body box: no padding below the frame
        height, width = image.shape[:2]
        x1, y1, x2, y2 = person_box(detection)
        inside = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        if inside[2] - inside[0] >= 1 and inside[3] - inside[1] >= 1:
            images.append(cut_evidence(image, inside, settings.person_max_side, "person"))
    return tuple(images)


def face_box_in_evidence(evidence: EvidenceImage, detection: Detection) -> tuple[float, float, float, float]:
    """The detection box in the evidence image's pixels (for a recogniser given the evidence image)."""
    x0, y0 = evidence.frame_box[:2]
    box = detection.box
    s = evidence.scale
    return ((box.x1 - x0) * s, (box.y1 - y0) * s, (box.x2 - x0) * s, (box.y2 - y0) * s)


_DEFAULT_EVIDENCE = EvidenceSettings()


def make_face_crop(frame: Frame, detection: Detection, variant: str = DEFAULT_VARIANT,
                   evidence: EvidenceSettings | None = _DEFAULT_EVIDENCE) -> FaceCrop:
    """``crop_face`` wrapped with its detection and frame time, and (unless ``evidence`` is None)
    the investigator's colour images of the same frame, for the pipeline."""
    return FaceCrop(
        pixels=crop_face(frame.image_bgr, detection, variant),
        detection=detection,
        frame_index=frame.index,
        timestamp=frame.timestamp,
        evidence=() if evidence is None else evidence_images(frame.image_bgr, detection, evidence),
    )


def landmarks_in_crop(detection: Detection, variant: str = DEFAULT_VARIANT, size: int = CROP_SIZE) -> np.ndarray:
    """Where the five landmarks land in the crop (5 x 2 crop pixels)."""
    matrix = crop_transform(detection, variant, size)
    points = np.asarray(detection.landmarks, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]
