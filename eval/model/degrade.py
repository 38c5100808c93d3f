"""The degradation suite: what a bad face crop looks like, made from a clean one.

The quality score must rank a clean crop above each of its degraded copies .
Each degradation has 3 levels (1 = mild, 3 = strong) and is deterministic given a seed.

Where it matters, a degradation is applied to the clean face at its *source* resolution, BEFORE
the final downscale to 64x64, as a camera would produce it: optical/motion blur and a low
resolution happen in the frame, not in the crop. Their strengths are given at the 64-px crop
scale (Gaussian blur sigma 1-4 px of a 64-px crop) and converted to source pixels. Noise, JPEG
compression and darkening are applied at the crop's scale (a face imaged at about crop
resolution); occlusion is a block over part of the face; off-centre is the crop window shifted
off the face. Without a larger source region (a bare 64x64 crop), the crop is upsampled first
(x4) so that blur and downscale still act before a final area downscale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

CROP = 64  # the VAE's input side (daemon.types.CROP_SIZE)

DEGRADATIONS: tuple[str, ...] = (
    "blur",
    "motion",
    "noise",
    "jpeg",
    "downscale",
    "dark",
    "occlusion",
    "offcentre",
)
LEVELS: tuple[int, ...] = (1, 2, 3)

# Strength per level, at the 64-px crop scale.
BLUR_SIGMA = {1: 1.0, 2: 2.0, 3: 4.0}  # Gaussian sigma, px
MOTION_LENGTH = {1: 5.0, 2: 9.0, 3: 15.0}  # length of the motion streak, px
NOISE_STD = {1: 6.0, 2: 12.0, 3: 24.0}  # additive Gaussian noise, grey levels of 255
JPEG_QUALITY = {1: 30, 2: 15, 3: 5}  # cv2.IMWRITE_JPEG_QUALITY
DOWNSCALE_FACTOR = {1: 2.0, 2: 3.0, 3: 4.0}  # the face imaged at 64/f px, shown at 64
DARK_GAIN_GAMMA = {1: (0.55, 1.2), 2: (0.35, 1.5), 3: (0.2, 1.8)}  # exposure gain, gamma
OCCLUSION_AREA = {1: 0.12, 2: 0.25, 3: 0.40}  # fraction of the crop covered by the block
OFFCENTRE_SHIFT = {1: 0.15, 2: 0.25, 3: 0.35}  # shift of the crop window, fraction of its side

UPSAMPLE_BARE_CROP = 4  # a bare 64x64 crop is upsampled this much before blur/downscale


@dataclass(frozen=True)
class FaceRegion:
    """A clean face at source resolution: ``image`` holds the face plus a margin around it,
    ``box`` (x1, y1, x2, y2) is the square that makes the clean 64x64 crop."""

    image: np.ndarray  # H x W uint8 grayscale
    box: tuple[float, float, float, float]

    @property
    def side(self) -> float:
        return float(self.box[2] - self.box[0])


def region_from_crop(crop: np.ndarray) -> FaceRegion:
    """A bare 64x64 crop as a region: upsampled x4 (nearest) with a reflected margin, so that
    blur/downscale act before a final area downscale and off-centre has something to show."""
    crop = _as_gray_uint8(crop)
    big = cv2.resize(
        crop,
        (crop.shape[1] * UPSAMPLE_BARE_CROP, crop.shape[0] * UPSAMPLE_BARE_CROP),
        interpolation=cv2.INTER_NEAREST,  # exact: the area downscale gives the crop back
    )
    margin = big.shape[0] // 2
    padded = cv2.copyMakeBorder(big, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)
    side = float(big.shape[0])
    return FaceRegion(padded, (float(margin), float(margin), margin + side, margin + side))


def clean_crop(region: FaceRegion) -> np.ndarray:
    """The clean 64x64 crop of a region (area interpolation, as the daemon's crop code does)."""
    return _cut(region.image, region.box, CROP)


def degrade(region: FaceRegion, kind: str, level: int, seed: int = 0) -> np.ndarray:
    """A 64x64 uint8 crop of ``region`` degraded by ``kind`` at ``level`` (1..3).

    Deterministic: the same (region, kind, level, seed) always gives the same pixels."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; known: {', '.join(DEGRADATIONS)}")
    if level not in LEVELS:
        raise ValueError(f"degradation level must be one of {LEVELS}, got {level!r}")
    rng = np.random.default_rng(_derived_seed(seed, kind, level))
    scale = region.side / CROP  # source pixels per crop pixel
    image, box = region.image, region.box

    if kind == "blur":
        sigma = BLUR_SIGMA[level] * scale
        return _cut(cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101), box)
    if kind == "motion":
        kernel = _motion_kernel(MOTION_LENGTH[level] * scale, angle_deg=rng.uniform(0.0, 180.0))
        return _cut(cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101), box)
    if kind == "downscale":
        small_side = max(2, int(round(CROP / DOWNSCALE_FACTOR[level])))
        small = _cut(image, box, small_side)
        return cv2.resize(small, (CROP, CROP), interpolation=cv2.INTER_LINEAR)
    if kind == "offcentre":
        angle = rng.uniform(0.0, 2.0 * np.pi)
        shift = OFFCENTRE_SHIFT[level] * region.side
        dx, dy = shift * np.cos(angle), shift * np.sin(angle)
        x1, y1, x2, y2 = box
        return _cut(image, (x1 + dx, y1 + dy, x2 + dx, y2 + dy))

    crop = clean_crop(region)
    if kind == "noise":
        noisy = crop.astype(np.float64) + rng.normal(0.0, NOISE_STD[level], crop.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if kind == "jpeg":
        ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY[level]])
        if not ok:  # pragma: no cover - cv2 always encodes a valid uint8 image
            raise RuntimeError("cv2 failed to JPEG-encode a crop")
        return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    if kind == "dark":
        gain, gamma = DARK_GAIN_GAMMA[level]
        dark = 255.0 * gain * (crop.astype(np.float64) / 255.0) ** gamma
        return np.clip(np.rint(dark), 0, 255).astype(np.uint8)
    # occlusion: a flat block of a random grey over part of the face (a hand, a scarf, a sign)
    area = OCCLUSION_AREA[level] * CROP * CROP
    aspect = rng.uniform(0.5, 2.0)
    width = int(np.clip(round(np.sqrt(area * aspect)), 4, CROP))
    height = int(np.clip(round(area / width), 4, CROP))
    # the block's centre falls on the face (the middle half of the crop)
    cx = rng.uniform(0.25, 0.75) * CROP
    cy = rng.uniform(0.25, 0.75) * CROP
    x1 = int(np.clip(round(cx - width / 2), 0, CROP - width))
    y1 = int(np.clip(round(cy - height / 2), 0, CROP - height))
    occluded = crop.copy()
    occluded[y1 : y1 + height, x1 : x1 + width] = np.uint8(rng.integers(0, 256))
    return occluded


def degrade_all(region: FaceRegion, seed: int = 0) -> dict[tuple[str, int], np.ndarray]:
    """Every (kind, level) degraded copy of one region."""
    return {(kind, level): degrade(region, kind, level, seed) for kind in DEGRADATIONS for level in LEVELS}


def _derived_seed(seed: int, kind: str, level: int) -> int:
    # independent streams per kind/level, stable across Python runs (no hash randomization)
    digest = hashlib.sha256(f"{int(seed)}:{kind}:{int(level)}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalized line kernel of ``length`` px at ``angle_deg`` (anti-aliased by supersampling)."""
    size = int(np.ceil(length)) | 1  # odd
    supersample = 8
    big = np.zeros((size * supersample, size * supersample), np.float32)
    centre = (size * supersample - 1) / 2.0
    half = length * supersample / 2.0
    dx, dy = np.cos(np.deg2rad(angle_deg)) * half, np.sin(np.deg2rad(angle_deg)) * half
    cv2.line(
        big,
        (int(round(centre - dx)), int(round(centre - dy))),
        (int(round(centre + dx)), int(round(centre + dy))),
        1.0,
        thickness=supersample,
    )
    kernel = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return kernel / kernel.sum()


def _cut(image: np.ndarray, box: tuple[float, float, float, float], size: int = CROP) -> np.ndarray:
    """The square ``box`` of ``image`` resized to ``size`` x ``size`` (area interpolation when
    shrinking, so no aliasing); parts of the box outside the image repeat the border pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    scale = size / (x2 - x1)  # output px per source px
    # integer window around the box, shrunk by area first when the box is bigger than the output
    # pad by whole output pixels, so an area shrink by an integer factor stays grid-aligned
    pad = int(np.ceil(2.0 / min(scale, 1.0)))
    bx1, by1 = int(np.floor(x1)) - pad, int(np.floor(y1)) - pad
    bx2, by2 = int(np.ceil(x2)) + pad, int(np.ceil(y2)) + pad
    window = _window(image, bx1, by1, bx2, by2)
    sx = sy = 1.0
    if scale < 1.0:
        out_w = max(1, int(round((bx2 - bx1) * scale)))
        out_h = max(1, int(round((by2 - by1) * scale)))
        sx, sy = out_w / (bx2 - bx1), out_h / (by2 - by1)
        window = cv2.resize(window, (out_w, out_h), interpolation=cv2.INTER_AREA)
    # output pixel u (centre u + 0.5) <- source x1 + (u + 0.5) / scale <- window index below
    matrix = np.array(
        [
            [sx / scale, 0.0, (x1 - bx1) * sx + 0.5 * sx / scale - 0.5],
            [0.0, sy / scale, (y1 - by1) * sy + 0.5 * sy / scale - 0.5],
        ],
        np.float64,
    )
    return cv2.warpAffine(
        window,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _window(image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """image[y1:y2, x1:x2] with replicated borders where the window leaves the image."""
    h, w = image.shape[:2]
    top, left = max(0, -y1), max(0, -x1)
    bottom, right = max(0, y2 - h), max(0, x2 - w)
    inner = image[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)]
    if top or left or bottom or right:
        inner = cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return inner


def _as_gray_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W uint8 grayscale image, got {image.shape} {image.dtype}")
    return image
