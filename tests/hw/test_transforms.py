"""Each custom lowering on a small graph: the transformed graph computes the same outputs."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.build, pytest.mark.slow]


@pytest.fixture(scope="module")
def finn(tmp_path_factory):
    from snapseal.hw.finn_env import boot_finn

    boot_finn(tmp_path_factory.mktemp("finn"))


def _leaky_threshold_graph(alpha: float, thresholds: np.ndarray):
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    channels = thresholds.shape[0]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 4, 4])
    nodes = [
        helper.make_node("LeakyRelu", ["x"], ["a"], alpha=alpha, name="LeakyRelu_0"),
        helper.make_node("MultiThreshold", ["a", "t"], ["y"], domain="qonnx.custom_op.general",
                         out_dtype="INT4", out_bias=-8.0, name="MultiThreshold_0"),
    ]
    graph = helper.make_graph(nodes, "leaky", [x], [y], value_info=[helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, channels, 4, 4])])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_initializer("t", thresholds.astype(np.float32))
    return model


def _run(model, x):
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(model, {model.graph.input[0].name: x})[model.graph.output[0].name]


def test_fold_thresholds_decides_like_leaky():
    from snapseal.hw.transforms.leaky_relu import fold_thresholds

    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, 5000).astype(np.float32)
    thresholds = np.sort(rng.normal(0, 2, 15)).astype(np.float32)
    leaky = np.where(x >= 0, x, x * np.float32(0.125))
    before = (leaky[:, None] >= thresholds[None]).sum(1)
    after = (x[:, None] >= fold_thresholds(thresholds, 0.125)[None]).sum(1)
    assert np.array_equal(before, after)


def test_leaky_relu_folds_into_multithreshold(finn):
    from snapseal.hw.transforms.leaky_relu import FoldLeakyReluIntoMultiThreshold

    rng = np.random.default_rng(1)
    thresholds = np.sort(rng.normal(0, 2, (3, 15)), axis=1)
    model = _leaky_threshold_graph(0.125, thresholds)
    # values on and around the folded thresholds are the hard cases
    x = np.concatenate([rng.normal(0, 4, 3 * 16 * 8), (thresholds.ravel() / 0.125)[: 3 * 16]]).astype(np.float32)
    x = x[: 3 * 16 * 8].reshape(8, 3, 4, 4)
    before = np.concatenate([_run(model, xi[None]) for xi in x])
    folded = model.transform(FoldLeakyReluIntoMultiThreshold())
    assert [n.op_type for n in folded.graph.node] == ["MultiThreshold"]
    after = np.concatenate([_run(folded, xi[None]) for xi in x])
    assert np.array_equal(before, after)


def test_leaky_relu_non_power_of_two_is_refused(finn):
    from snapseal.hw.transforms.leaky_relu import FoldLeakyReluIntoMultiThreshold, UnfoldableLeakyReluError

    model = _leaky_threshold_graph(0.1, np.zeros((2, 3)))
    with pytest.raises(UnfoldableLeakyReluError, match="LeakyRelu_0"):
        model.transform(FoldLeakyReluIntoMultiThreshold())


@pytest.fixture(scope="module")
def decoder_path(finn, tmp_path_factory):
    """TinyDecoderPath through FINN's import and tidy-up, leaky folded (what the lowerings see)."""
    import torch

    from snapseal.hw import tiny
    from snapseal.hw.transforms.leaky_relu import FoldLeakyReluIntoMultiThreshold

    torch.manual_seed(0)
    path = tiny.export(tiny.calibrate(tiny.TinyDecoderPath()), tmp_path_factory.mktemp("tiny") / "path.onnx")
    import finn.builder.build_dataflow_steps as steps
    from finn.builder.build_dataflow_config import DataflowBuildConfig
    from qonnx.core.modelwrapper import ModelWrapper

    cfg = DataflowBuildConfig(output_dir=str(path.parent / "out"), synth_clk_period_ns=10.0, generate_outputs=[])
    model = steps.step_tidy_up(steps.step_qonnx_to_finn(ModelWrapper(str(path)), cfg), cfg)
    model = model.transform(FoldLeakyReluIntoMultiThreshold())
    crops = np.random.default_rng(2).integers(0, 256, (6, 1, 1, 16, 16)).astype(np.float32)
    return model, crops


def _outputs(model, crops):
    return np.stack([_run(model, c) for c in crops])


def test_conv_transpose_lowering_same_outputs(decoder_path):
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.streamline import Streamline

    from snapseal.hw.transforms.conv_transpose import LowerConvTranspose

    model, crops = decoder_path
    model = model.transform(absorb.AbsorbScalarBiasIntoMultiThreshold()).transform(Streamline())
    before = _outputs(model, crops)
    lowered = model.transform(LowerConvTranspose())
    ops = [n.op_type for n in lowered.graph.node]
    assert "ConvTranspose" not in ops and "FMPadding_Pixel" in ops
    assert np.array_equal(before, _outputs(lowered, crops))


def test_conv_transpose_group_2_refused_naming_node(decoder_path):
    from onnx import helper

    from snapseal.hw.transforms.conv_transpose import LowerConvTranspose, UnmappableConvTransposeError

    model, _ = decoder_path
    import copy

    model = copy.deepcopy(model)
    node = model.get_nodes_by_op_type("ConvTranspose")[0]
    for attr in list(node.attribute):
        if attr.name == "group":
            node.attribute.remove(attr)
    node.attribute.append(helper.make_attribute("group", 2))
    with pytest.raises(UnmappableConvTransposeError, match=node.name):
        model.transform(LowerConvTranspose())


def test_resize_becomes_upsample_same_outputs(decoder_path):
    from snapseal.hw.flow import step_streamline_vae
    from snapseal.hw.transforms.resize import InferUpsampleFromResize

    model, crops = decoder_path
    streamlined = step_streamline_vae(model, None)
    assert "Resize" in [n.op_type for n in streamlined.graph.node]
    before = _outputs(streamlined, crops)
    mapped = streamlined.transform(InferUpsampleFromResize())
    ops = [n.op_type for n in mapped.graph.node]
    assert "Resize" not in ops and "UpsampleNearestNeighbour" in ops
    assert np.array_equal(before, _outputs(mapped, crops))
