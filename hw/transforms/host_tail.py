"""Cut the float output scaling off the accelerator: the FPGA streams integers, the host scales.

After streamlining, each graph output is an integer accumulator or threshold count followed by
a short tail of layout and affine nodes (Transpose to NCHW, Mul by a scale, Add a bias) that
FINN would otherwise build as floating-point hardware. Those tails move to the host: this
transformation removes them, makes the integer tensors the graph outputs, and returns a
description of each tail (:class:`OutputTail`) so the host (driver/emulation) applies exactly
the same arithmetic in float32, in the same order.

The graph input is annotated UINT8: the camera's crops are raw 8-bit pixels, so the input
quantizer's thresholds become an integer comparison FINN can build (a signed input quantizer fails FINN's thresholding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import get_by_name

from snapseal.daemon.accel.host_tail import HOST_OPS, apply_tail  # noqa: F401  (the host side, re-exported)

OUTPUT_NAMES_PROP = "snapseal_output_names"
TAIL_OPS = ("Mul", "Add", "Transpose", "Reshape", "Flatten")


@dataclass
class OutputTail:
    """One graph output: integer tensor from the FPGA -> float32 value the model returns."""

    output_name: str  # the float output in the original graph
    integer_name: str  # the tensor the hardware now streams out
    integer_shape: list[int]
    integer_dtype: str  # FINN DataType name, e.g. INT11
    ops: list[dict] = field(default_factory=list)  # in order: {"op": "mul"|"add"|"transpose"|"reshape", ...}
    output_shape: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "output_name": self.output_name,
            "integer_name": self.integer_name,
            "integer_shape": list(self.integer_shape),
            "integer_dtype": self.integer_dtype,
            "output_shape": list(self.output_shape),
            "ops": self.ops,
        }


def _tail_op(model: ModelWrapper, node) -> dict | None:
    if node.op_type in ("Mul", "Add"):
        const = model.get_initializer(node.input[1])
        if const is None:
            return None
        return {"op": node.op_type.lower(), "value": np.asarray(const, np.float32).ravel().tolist(), "shape": list(const.shape)}
    if node.op_type == "Transpose":
        return {"op": "transpose", "perm": list(get_by_name(node.attribute, "perm").ints)}
    if node.op_type in ("Reshape", "Flatten"):
        return {"op": "reshape", "shape": list(model.get_tensor_shape(node.output[0]))}
    return None


def split_host_tails(model: ModelWrapper) -> tuple[ModelWrapper, list[OutputTail]]:
    """Remove each output's float tail; returns the integer-output model and the tails."""
    graph = model.graph
    tails: list[OutputTail] = []
    original_names = json.loads(model.get_metadata_prop(OUTPUT_NAMES_PROP) or "[]")
    for position, output in enumerate(list(graph.output)):
        ops: list[dict] = []
        removed = []
        tensor = output.name
        while True:
            producer = model.find_producer(tensor)
            if producer is None or producer.op_type not in TAIL_OPS:
                break
            if producer.op_type in ("Mul", "Add") and model.get_tensor_datatype(tensor).is_integer():
                break  # an integer-valued affine op (never after streamlining), keep it
            users = [c for c in (model.find_consumers(producer.output[0]) or []) if c not in removed]
            other_output = producer.output[0] != output.name and producer.output[0] in {o.name for o in graph.output}
            if users or other_output:
                break  # the value is also used inside the graph or is another output: not a pure tail
            op = _tail_op(model, producer)
            if op is None:
                break
            ops.insert(0, op)
            removed.append(producer)
            tensor = producer.input[0]
        if not model.get_tensor_datatype(tensor).is_integer():
            continue  # no integer source reached: leave this output to FINN
        if not removed:
            continue
        for node in removed:
            graph.node.remove(node)
        integer_shape = model.get_tensor_shape(tensor)
        dtype = model.get_tensor_datatype(tensor)
        tails.append(
            OutputTail(
                output_name=original_names[position] if position < len(original_names) else output.name,
                integer_name=tensor,
                integer_shape=list(integer_shape),
                integer_dtype=dtype.name,
                ops=ops,
                output_shape=list(model.get_tensor_shape(output.name)),
            )
        )
        new_output = next((vi for vi in graph.value_info if vi.name == tensor), None)
        index = list(graph.output).index(output)
        graph.output.remove(output)
        if new_output is None:
            from onnx import TensorProto, helper

            new_output = helper.make_tensor_value_info(tensor, TensorProto.FLOAT, integer_shape)
        else:
            graph.value_info.remove(new_output)
        graph.output.insert(index, new_output)
    return model, tails


def annotate_uint8_input(model: ModelWrapper) -> ModelWrapper:
    """Crops are raw 8-bit pixels: say so, so thresholds on them become integer compares.

    Also records the graph's output names (FINN's tidy-up renames them to global_out_N).
    """
    model.set_metadata_prop(OUTPUT_NAMES_PROP, json.dumps([o.name for o in model.graph.output]))
    for graph_input in model.graph.input:
        if model.get_initializer(graph_input.name) is None:
            model.set_tensor_datatype(graph_input.name, DataType["UINT8"])
    return model
