"""hw/transforms/exact_thresholds.py: FINN's thresholds replaced by the exact ones of the
quantizer they came from; checked EXHAUSTIVELY over every integer input of a small graph."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.build, pytest.mark.slow]

CHANNELS = 4
LEVELS_IN = 256  # every INT8 input value, one per batch row


@pytest.fixture(scope="module")
def finn(tmp_path_factory):
    from snapseal.hw.finn_env import boot_finn

    boot_finn(tmp_path_factory.mktemp("finn"))


def _reference_graph(mul: np.ndarray, add: np.ndarray, out_scale: float, out_bits: int):
    """x (INT8 values) -> Quant(1, 8b) -> Mul -> Add -> LeakyRelu(1/8) -> Quant(out_scale) -> y.

    The same shape as a VAE block after its conv (Mul/Add = batch norm), with per-channel
    constants; ``mul = 1/16, add = 0`` re-quantizes a 1/16 grid to 1/4: exact ties.
    """
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    shape = [LEVELS_IN, CHANNELS, 1, 1]
    qdomain = "qonnx.custom_op.general"
    nodes = [
        helper.make_node("Quant", ["x", "s0", "z", "b8"], ["q0"], domain=qdomain, signed=1, narrow=0, rounding_mode="ROUND", name="Quant_in"),
        helper.make_node("Mul", ["q0", "mul"], ["m"], name="Mul_bn"),
        helper.make_node("Add", ["m", "add"], ["a"], name="Add_bn"),
        helper.make_node("LeakyRelu", ["a"], ["l"], alpha=0.125, name="LeakyRelu_0"),
        helper.make_node("Quant", ["l", "s1", "z", "bout"], ["y"], domain=qdomain, signed=1, narrow=0, rounding_mode="ROUND", name="Quant_out"),
    ]
    value_info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("q0", "m", "a", "l")]
    graph = helper.make_graph(
        nodes, "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        value_info=value_info,
    )
    model = ModelWrapper(qonnx_make_model(graph))
    for name, value in {
        "s0": np.float32(1.0), "z": np.float32(0.0), "b8": np.float32(8.0),
        "mul": mul.astype(np.float32).reshape(1, CHANNELS, 1, 1), "add": add.astype(np.float32).reshape(1, CHANNELS, 1, 1),
        "s1": np.float32(out_scale), "bout": np.float32(out_bits),
    }.items():
        model.set_initializer(name, np.asarray(value, np.float32))
    return model


def _finn_streamlined(reference, tmp_path):
    """What hw/flow.py does up to step_streamline_vae."""
    import copy

    import finn.builder.build_dataflow_steps as steps
    from finn.builder.build_dataflow_config import DataflowBuildConfig
    from qonnx.core.datatype import DataType

    from snapseal.hw.flow import step_fold_leaky_relu, step_streamline_vae

    model = copy.deepcopy(reference)
    model.set_tensor_datatype("x", DataType["INT8"])
    cfg = DataflowBuildConfig(output_dir=str(tmp_path), synth_clk_period_ns=10.0, generate_outputs=[])
    model = steps.step_tidy_up(steps.step_qonnx_to_finn(model, cfg), cfg)
    model = step_fold_leaky_relu(model, cfg)
    return step_streamline_vae(model, cfg)


def _every_input() -> np.ndarray:
    column = np.arange(-128, 128, dtype=np.float32)
    return np.repeat(column[:, None], CHANNELS, axis=1).reshape(LEVELS_IN, CHANNELS, 1, 1)


def _run(model, x):
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(model, {model.graph.input[0].name: x})[model.graph.output[0].name]


def _finn_integers(model, x, out_scale):
    """The streamlined graph's output in integer units (its tail is the Mul by the scale)."""
    return np.round(_run(model, x) / out_scale).astype(np.int64)


@pytest.mark.parametrize("case", ["ties", "float_bn"])
def test_exact_thresholds_match_reference_on_every_input(finn, tmp_path, case):
    from snapseal.hw.transforms.exact_thresholds import MakeThresholdsExact

    rng = np.random.default_rng(3)
    if case == "ties":
        # a 1/16 grid re-quantized to 1/4: half of the ties round differently half-up vs half-even
        mul, add, out_scale, bits = np.full(CHANNELS, 1 / 16), np.zeros(CHANNELS), 0.25, 6
    else:
        mul, add, out_scale, bits = rng.uniform(0.01, 0.2, CHANNELS), rng.normal(0, 1, CHANNELS), 0.25, 6
    reference = _reference_graph(mul, add, out_scale, bits)
    x = _every_input()
    want = np.round(_run(reference, x) / out_scale).astype(np.int64)

    streamlined = _finn_streamlined(reference, tmp_path)
    assert "MultiThreshold" in [n.op_type for n in streamlined.graph.node]
    before = _finn_integers(streamlined, x, out_scale)
    exact = MakeThresholdsExact(reference)
    fixed = streamlined.transform(exact)
    after = _finn_integers(fixed, x, out_scale)

    assert np.array_equal(after, want), f"{np.count_nonzero(after != want)} of {want.size} differ"
    assert {fix.reference for fix in exact.fixes} == {"Quant_in", "Quant_out"}
    if case == "ties":
        # the test can fail: FINN's own thresholds round the ties up
        assert not np.array_equal(before, want)
        assert sum(fix.changed for fix in exact.fixes) > 0


def test_reference_function_rounds_half_to_even():
    from snapseal.hw.transforms.exact_thresholds import ReferenceQuantizer

    quantizer = ReferenceQuantizer(
        name="q", channels=1, unit=np.array([0.0625], np.float32), bias=None, elementwise=[],
        scale=np.array([0.5], np.float32), zero_point=np.zeros(1, np.float32), bits=8, signed=True,
        narrow=False, rounding_mode="ROUND",
    )
    # 4/16 / 0.5 = 0.5 -> 0 ; 12/16 / 0.5 = 1.5 -> 2 ; -4/16 -> -0.5 -> 0
    assert quantizer.integer_output(np.array([[4, 12, -4, 20]])).tolist() == [[0, 2, -0, 2]]
    thresholds = quantizer.exact_thresholds(1, -2048, 2047)
    # level 0 -> 1 needs 0.5 < acc/8, i.e. acc >= 5 (acc = 4 is a tie that rounds to 0)
    assert thresholds[0, 128] == 5
    # level 1 -> 2 at acc/8 >= 1.5: acc = 12 is a tie that rounds UP to 2 (even)
    assert thresholds[0, 129] == 12


def test_unidentifiable_multithreshold_is_refused_naming_it(finn, tmp_path):
    from snapseal.hw.transforms.exact_thresholds import ExactThresholdError, MakeThresholdsExact

    reference = _reference_graph(np.full(CHANNELS, 0.1), np.zeros(CHANNELS), 0.25, 6)
    streamlined = _finn_streamlined(reference, tmp_path)
    other = _reference_graph(np.full(CHANNELS, 0.013), np.full(CHANNELS, 0.7), 0.25, 6)  # a different model
    node = [n for n in streamlined.graph.node if n.op_type == "MultiThreshold"][-1]
    with pytest.raises(ExactThresholdError, match=node.name):
        streamlined.transform(MakeThresholdsExact(other))
