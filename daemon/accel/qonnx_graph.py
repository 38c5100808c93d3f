"""The bundle's QONNX graphs, prepared for the host-side backends (emulate, cpu).

Both backends start the same way — read the graph, fold the weights' Quant nodes into the
constant 4-bit weights — and then rewrite every remaining (activation) Quant node: ``emulate``
into exact integer arithmetic with standard ONNX ops (Div, Round, Clip, Mul), ``cpu`` into a
float Clip to the same range. The Quant node's parameters and the rewrite loop live here once.

qonnx's Quant: y = (clip(round(x / scale + zp), min_int, max_int) - zp) * scale, rounding
half to even (ROUND), which is what ONNX Round does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from snapseal.daemon.errors import SnapsealError


def load_wrapper(path: Path):
    from qonnx.core.modelwrapper import ModelWrapper

    try:
        return ModelWrapper(str(path))
    except Exception as exc:  # protobuf decode errors
        raise SnapsealError(f"{path}: cannot read ONNX graph ({exc.__class__.__name__})") from None


def fold_weight_quants(model):
    """Quant nodes whose inputs are all constants (the weights') -> constant tensors."""
    from qonnx.transformation.fold_constants import FoldConstants

    return model.transform(FoldConstants(exclude_op_types=[]))


def with_batch(model, batch: int):
    """A copy of the graph with batch size `batch` on every graph input and output."""
    from qonnx.transformation.infer_shapes import InferShapes

    model = copy.deepcopy(model)
    graph = model.graph
    for vi in list(graph.input) + list(graph.output):
        vi.type.tensor_type.shape.dim[0].dim_value = batch
    while len(graph.value_info) > 0:
        graph.value_info.remove(graph.value_info[0])
    return model.transform(InferShapes())


@dataclass(frozen=True)
class QuantParams:
    """One Quant node's constants: its integer range [lo, hi] and scale."""

    name: str  # node name (or its output's), a prefix for the tensors a rewrite adds
    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    signed: bool
    narrow: bool
    rounding_mode: str

    @property
    def lo(self) -> int:
        return (-(2 ** (self.bits - 1)) + (1 if self.narrow else 0)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (2 ** (self.bits - 1) - 1) if self.signed else (2**self.bits - 1 - (1 if self.narrow else 0))


def quant_params(model, node) -> QuantParams:
    from onnx import helper

    _, scale_name, zp_name, bits_name = node.input
    scale, zp, bits = (model.get_initializer(name) for name in (scale_name, zp_name, bits_name))
    if scale is None or zp is None or bits is None:
        raise SnapsealError(f"Quant node {node.name}: scale/zero-point/bit width must be constants")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    return QuantParams(name=node.name or node.output[0], scale=np.asarray(scale), zero_point=np.asarray(zp),
                       bits=int(np.asarray(bits).item()), signed=bool(attrs.get("signed", 1)),
                       narrow=bool(attrs.get("narrow", 0)),
                       rounding_mode=str(attrs.get("rounding_mode", "ROUND")).upper())


def rewrite_quant_nodes(model, replace: Callable[[Any, QuantParams, Any], list]):
    """Replace every Quant node by ``replace(node, params, graph)`` (which may add initializers),
    then leave a graph onnxruntime runs at any batch size: no stale shapes, a dynamic batch
    dimension, standard opset only."""
    graph = model.graph
    new_nodes = []
    for node in graph.node:
        if node.op_type != "Quant":
            new_nodes.append(node)
            continue
        new_nodes += replace(node, quant_params(model, node), graph)
    del graph.node[:]
    graph.node.extend(new_nodes)
    while len(graph.value_info) > 0:
        graph.value_info.remove(graph.value_info[0])
    for vi in list(graph.input) + list(graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "batch"
    model.model.opset_import[0].version = max(13, model.model.opset_import[0].version)
    del model.model.opset_import[1:]  # no custom domains left
    return model


def add_constant(graph, name: str, value: Any) -> str:
    from onnx import numpy_helper

    graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
    return name
