"""Lower ConvTranspose (the decoder's upsampling conv) to FINN hardware-mappable nodes.

Brevitas exports QuantConvTranspose2d as Mul(scale) -> ConvTranspose(integer weights). The
scalar Mul is moved past the ConvTranspose (``MoveScalarMulPastConvTranspose``) so it can
collapse with the following BatchNorm/threshold scales, then FINN's ``InferPixelPaddingDeconv``
rewrites the ConvTranspose as FMPadding_Pixel (insert stride-1 zeros between pixels) + Im2Col
+ MatMul in NHWC with Transposes around it. Only group=1 is supported by FINN: other groups are
refused naming the node.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name


class UnmappableConvTransposeError(ValueError):
    """A ConvTranspose FINN's pixel-padding lowering cannot handle (names the node)."""


class LowerConvTranspose(Transformation):
    """ConvTranspose (NCHW) -> Transpose, FMPadding_Pixel, Im2Col, MatMul, Transpose."""

    def __init__(self, move_scalar_mul: bool = True) -> None:
        super().__init__()
        self.move_scalar_mul = move_scalar_mul

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from finn.transformation.fpgadataflow.infer_pixel_padding_deconv import (
            InferPixelPaddingDeconv,
        )
        from finn.transformation.streamline.reorder import MoveScalarMulPastConvTranspose

        deconvs = model.get_nodes_by_op_type("ConvTranspose")
        if not deconvs:
            return model, False
        for node in deconvs:
            group = get_by_name(node.attribute, "group")
            if group is not None and group.i != 1:
                raise UnmappableConvTransposeError(
                    f"{node.name}: ConvTranspose with group={group.i}; FINN maps group=1 only"
                )
        if self.move_scalar_mul:
            model = model.transform(MoveScalarMulPastConvTranspose())
        model = model.transform(InferPixelPaddingDeconv())
        model = model.transform(InferShapes())
        left = model.get_nodes_by_op_type("ConvTranspose")
        if left:
            raise UnmappableConvTransposeError(f"{left[0].name}: ConvTranspose was not lowered")
        return model, False
