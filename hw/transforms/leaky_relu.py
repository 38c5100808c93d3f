"""Fold a LeakyRelu into the MultiThreshold that quantizes its output.

A quantizer after LeakyRelu is a monotonic step function of the LeakyRelu's input, so the pair
is one MultiThreshold with moved thresholds: leaky(x) >= T  <=>  x >= T' with
T' = T if T >= 0 else T / alpha (leaky is the identity above 0 and x * alpha below). Dividing
by alpha is exact in floating point when alpha is a power of two (the model uses 1/8), so the
folded graph computes bit-identical outputs. Other alphas are refused, not approximated.
"""

from __future__ import annotations

import math

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name


class UnfoldableLeakyReluError(ValueError):
    """A LeakyRelu the folding cannot make exact (names the node)."""


def is_power_of_two(value: float) -> bool:
    if value <= 0.0:
        return False
    mantissa, _ = math.frexp(value)
    return mantissa == 0.5


def fold_thresholds(thresholds: np.ndarray, alpha: float) -> np.ndarray:
    """Thresholds on leaky(x) -> the same decisions as thresholds on x."""
    thresholds = np.asarray(thresholds, dtype=np.float32)
    return np.where(thresholds >= 0, thresholds, thresholds / np.float32(alpha)).astype(np.float32)


class FoldLeakyReluIntoMultiThreshold(Transformation):
    """LeakyRelu -> MultiThreshold becomes one MultiThreshold on the LeakyRelu's input."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        for node in list(graph.node):
            if node.op_type != "LeakyRelu":
                continue
            alpha_attr = get_by_name(node.attribute, "alpha")
            alpha = float(alpha_attr.f) if alpha_attr is not None else 0.01  # ONNX default
            consumers = model.find_consumers(node.output[0]) or []
            if len(consumers) != 1 or consumers[0].op_type != "MultiThreshold":
                raise UnfoldableLeakyReluError(
                    f"{node.name}: LeakyRelu must feed exactly one quantizer (MultiThreshold), "
                    f"found {[c.op_type for c in consumers]}"
                )
            if not is_power_of_two(alpha):
                raise UnfoldableLeakyReluError(
                    f"{node.name}: negative slope {alpha} is not a power of two; folding it "
                    "into thresholds would not be exact"
                )
            threshold_node = consumers[0]
            thresholds = model.get_initializer(threshold_node.input[1])
            if thresholds is None:
                raise UnfoldableLeakyReluError(f"{threshold_node.name}: thresholds are not constant")
            model.set_initializer(threshold_node.input[1], fold_thresholds(thresholds, alpha))
            threshold_node.input[0] = node.input[0]
            graph.node.remove(node)
            # One change per call: qonnx re-runs apply() until nothing changes.
            return model, True
        return model, False
