"""Absorb the NCHW<->NHWC layout changes around the dense (QuantLinear) layers into weights.

FINN streams feature maps in NHWC; PyTorch flattens/reshapes in NCHW. Where
Transpose(NHWC->NCHW) -> Flatten feeds dense layers, reordering the rows of every consumer
MatMul's weight lets the Flatten read NHWC directly (works for any number of consumers,
unlike FINN's RemoveCNVtoFCFlatten which needs exactly one). The products are the same
integer sums, only the summation order in the weight matrix changes.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

NHWC_TO_NCHW = [0, 3, 1, 2]


def nchw_rows_for_nhwc(channels: int, height: int, width: int) -> np.ndarray:
    """Index array r: row r[k] of an NCHW-flattened weight belongs at NHWC position k."""
    return np.arange(channels * height * width).reshape(channels, height, width).transpose(1, 2, 0).reshape(-1)


class AbsorbTransposeFlattenIntoDense(Transformation):
    """Transpose(0,3,1,2) -> Flatten|Reshape(N,-1) -> MatMul(s) becomes Flatten -> MatMul(s)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        for node in list(graph.node):
            if node.op_type != "Transpose":
                continue
            perm = get_by_name(node.attribute, "perm")
            if perm is None or list(perm.ints) != NHWC_TO_NCHW:
                continue
            flatten = model.find_consumer(node.output[0])
            if flatten is None or flatten.op_type not in ("Flatten", "Reshape") or model.is_fork_node(node):
                continue
            out_shape = model.get_tensor_shape(flatten.output[0])
            if len(out_shape) != 2:
                continue
            dense = model.find_consumers(flatten.output[0]) or []
            if not dense or any(c.op_type != "MatMul" or model.get_initializer(c.input[1]) is None for c in dense):
                continue
            _, height, width, channels = model.get_tensor_shape(node.input[0])
            rows = nchw_rows_for_nhwc(channels, height, width)
            for consumer in dense:
                weight = model.get_initializer(consumer.input[1])
                model.set_initializer(consumer.input[1], weight[rows, :])
            flatten.input[0] = node.input[0]
            graph.node.remove(node)
            if flatten.op_type == "Reshape":
                model.set_initializer(flatten.input[1], np.asarray(out_shape, dtype=np.int64))
            return model, True
        return model, False


class RemoveFlattenBetweenHwLayers(Transformation):
    """A Flatten/Reshape to 2-D between hardware layers is a no-op on the stream: drop it.

    FINN's ``RemoveCNVtoFCFlatten`` does this for one consumer only; the encoder's features
    feed two dense heads (mu_z, log_sigma_z), so every hardware consumer is rewired here.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        def is_hw(node) -> bool:
            return node is not None and node.domain.startswith("finn.custom_op.fpgadataflow")

        for node in list(model.graph.node):
            if node.op_type not in ("Flatten", "Reshape"):
                continue
            out_shape = model.get_tensor_shape(node.output[0])
            if out_shape is None or len(out_shape) != 2:
                continue
            consumers = model.find_consumers(node.output[0]) or []
            if not is_hw(model.find_producer(node.input[0])) or not consumers:
                continue
            if not all(is_hw(c) for c in consumers) or node.output[0] in {o.name for o in model.graph.output}:
                continue
            for consumer in consumers:
                for index, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[index] = node.input[0]
            model.graph.node.remove(node)
            return model, True
        return model, False
