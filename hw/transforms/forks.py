"""Scale nodes at forks: give every consumer its own copy so streamlining can absorb it.

The VAE's mu_z is both a graph output (the host needs it) and the decoder's input; the
flattened encoder features feed two dense heads (mu, log_sigma). FINN's streamliner only
moves a scalar Mul/Add past a MatMul when that node has one consumer. Cloning the node per
consumer (graph outputs keep their own copy) computes the same values and unblocks it.
"""

from __future__ import annotations

import copy

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

LINEAR_OPS = ("Mul", "Add")
LAYOUT_OPS = ("Flatten", "Reshape")


class CloneForkedLinearPerConsumer(Transformation):
    """Constant Mul/Add (or Flatten/Reshape) feeding several consumers (or a consumer and a graph
    output) -> one copy each.

    Flatten is cloned too: FINN's RemoveCNVtoFCFlatten rewires only the first consumer of a
    forked Flatten and leaves the others reading a tensor nobody produces.
    """

    def __init__(self, op_types: tuple[str, ...] = LINEAR_OPS) -> None:
        super().__init__()
        self.op_types = op_types

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        graph_outputs = {o.name for o in graph.output}
        for node in list(graph.node):
            if node.op_type not in self.op_types:
                continue
            if len(node.input) > 1 and model.get_initializer(node.input[1]) is None:
                continue
            consumers = model.find_consumers(node.output[0]) or []
            is_output = node.output[0] in graph_outputs
            if len(consumers) + int(is_output) < 2:
                continue
            # Keep the original for the graph output (or the first consumer); clone for the rest.
            to_rewire = consumers if is_output else consumers[1:]
            insert_at = list(graph.node).index(node) + 1
            for consumer in to_rewire:
                clone = copy.deepcopy(node)
                clone.name = model.make_new_valueinfo_name()
                new_out = model.make_new_valueinfo_name()
                clone.output[0] = new_out
                model.set_tensor_shape(new_out, model.get_tensor_shape(node.output[0]))
                model.set_tensor_datatype(new_out, model.get_tensor_datatype(node.output[0]))
                for index, name in enumerate(consumer.input):
                    if name == node.output[0]:
                        consumer.input[index] = new_out
                graph.node.insert(insert_at, clone)
            return model, True
        return model, False
