"""Turn a nearest-neighbour Resize (Brevitas' QuantUpsamplingNearest2d) into FINN's
UpsampleNearestNeighbour hardware layer.

FINN's ``InferUpsample`` accepts Resize but only on an integer NHWC input, and the default
``step_convert_to_hw`` only calls it when an op named ``Upsample`` exists. So: move the
layout Transposes around the Resize (``MakeScaleResizeNHWC``, scales permuted to NHWC),
cancel the Transpose pairs that meet, record the NHWC layout, then ``InferUpsample``.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name


class UnmappableResizeError(ValueError):
    """A Resize the hardware cannot do (names the node)."""


def check_resizes(model: ModelWrapper) -> None:
    """Refuse modes/scales that UpsampleNearestNeighbour cannot compute."""
    for node in model.get_nodes_by_op_type("Resize"):
        mode = get_by_name(node.attribute, "mode")
        mode_name = mode.s.decode() if mode is not None else "nearest"
        if mode_name != "nearest":
            raise UnmappableResizeError(f"{node.name}: Resize mode {mode_name!r}; only 'nearest' maps")


class MakeResizeNHWC(Transformation):
    """Move NCHW<->NHWC Transposes past each Resize so it sits in NHWC, then tidy layouts."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes
        from finn.transformation.streamline.reorder import MakeScaleResizeNHWC
        from qonnx.transformation.infer_data_layouts import InferDataLayouts

        if not model.get_nodes_by_op_type("Resize"):
            return model, False
        check_resizes(model)
        model = model.transform(InferDataLayouts())
        model = model.transform(MakeScaleResizeNHWC())
        model = model.transform(AbsorbConsecutiveTransposes())
        model = model.transform(InferDataLayouts())
        return model, False


class InferUpsampleFromResize(Transformation):
    """Resize (NHWC, integer input) -> UpsampleNearestNeighbour; leftovers raise, naming them."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from finn.transformation.fpgadataflow.convert_to_hw.upsample import InferUpsample

        if not model.get_nodes_by_op_type("Resize"):
            return model, False
        model = model.transform(InferUpsample())
        left = model.get_nodes_by_op_type("Resize")
        if left:
            node = left[0]
            raise UnmappableResizeError(
                f"{node.name}: Resize not mapped (input layout "
                f"{model.get_tensor_layout(node.input[0])}, type "
                f"{model.get_tensor_datatype(node.input[0])}; needs NHWC integer)"
            )
        return model, False
