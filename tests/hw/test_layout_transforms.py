"""hw/transforms/host_tail.py, forks.py, dense_layout.py and hw/driver_settings.py on small
hand-built graphs: each transformed graph computes the same outputs as before."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytestmark = [pytest.mark.build]


def _model(nodes, inputs, outputs, initializers, value_info=(), datatypes=None):
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    def info(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    graph = helper.make_graph(nodes, "g", [info(*i) for i in inputs], [info(*o) for o in outputs],
                              value_info=[info(*v) for v in value_info])
    model = ModelWrapper(qonnx_make_model(graph))
    for name, value in initializers.items():
        model.set_initializer(name, np.asarray(value, np.float32))
    for name, dtype in (datatypes or {}).items():
        model.set_tensor_datatype(name, DataType[dtype])
    return model


def _run(model, x):
    from qonnx.core.onnx_exec import execute_onnx

    out = execute_onnx(model, {model.graph.input[0].name: x})
    return [out[o.name] for o in model.graph.output]


def _threshold_node(inp, out, thresholds="t", layout="NHWC"):
    from onnx import helper

    return helper.make_node("MultiThreshold", [inp, thresholds], [out], domain="qonnx.custom_op.general",
                            out_dtype="INT4", out_bias=-8.0, data_layout=layout, name=f"MT_{out}")


# --------------------------------------------------------------------------- host tails
def test_split_host_tails_host_side_reproduces_outputs():
    from onnx import helper

    from snapseal.hw.transforms.host_tail import apply_tail, split_host_tails

    rng = np.random.default_rng(0)
    thresholds = np.sort(rng.normal(0, 3, (3, 15)), axis=1)
    nodes = [
        _threshold_node("x", "q"),
        helper.make_node("Transpose", ["q"], ["t_out"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["t_out", "scale"], ["m"]),
        helper.make_node("Add", ["m", "bias"], ["y"]),
    ]
    model = _model(
        nodes, [("x", [1, 2, 2, 3])], [("y", [1, 3, 2, 2])],
        {"t": thresholds, "scale": np.float32(0.125), "bias": rng.normal(0, 1, (1, 3, 1, 1))},
        value_info=[("q", [1, 2, 2, 3]), ("t_out", [1, 3, 2, 2]), ("m", [1, 3, 2, 2])],
        datatypes={"q": "INT4", "t_out": "INT4"},
    )
    x = rng.normal(0, 4, (1, 2, 2, 3)).astype(np.float32)
    (want,) = _run(model, x)
    split, tails = split_host_tails(copy.deepcopy(model))
    assert [n.op_type for n in split.graph.node] == ["MultiThreshold"]
    assert len(tails) == 1 and [op["op"] for op in tails[0].ops] == ["transpose", "mul", "add"]
    (integers,) = _run(split, x)
    assert np.array_equal(integers, np.round(integers)) and integers.min() >= -8 and integers.max() <= 7
    got = apply_tail(tails[0].to_json(), integers)
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_split_host_tails_keeps_values_used_inside_the_graph():
    from onnx import helper

    from snapseal.hw.transforms.host_tail import split_host_tails

    nodes = [
        _threshold_node("x", "q"),
        helper.make_node("Mul", ["q", "scale"], ["y"]),
        helper.make_node("Add", ["y", "one"], ["y2"]),
    ]
    model = _model(nodes, [("x", [1, 1, 1, 3])], [("y", [1, 1, 1, 3]), ("y2", [1, 1, 1, 3])],
                   {"t": np.zeros((3, 15)), "scale": np.float32(0.5), "one": np.float32(1.0)},
                   value_info=[("q", [1, 1, 1, 3])], datatypes={"q": "INT4"})
    split, tails = split_host_tails(copy.deepcopy(model))
    # y is consumed by the Add: its Mul stays; only y2's Add (whose input is not integer) is not split
    assert "Mul" in [n.op_type for n in split.graph.node]
    assert all(t.output_name != "y" for t in tails)


# --------------------------------------------------------------------------- forks
def test_clone_forked_scale_per_consumer_same_outputs():
    from onnx import helper

    from snapseal.hw.transforms.forks import CloneForkedLinearPerConsumer

    rng = np.random.default_rng(1)
    nodes = [
        _threshold_node("x", "q", layout="NC"),
        helper.make_node("Mul", ["q", "scale"], ["mu"]),  # graph output AND the decoder's input
        helper.make_node("MatMul", ["mu", "w"], ["dec"]),
        helper.make_node("MatMul", ["mu", "w2"], ["dec2"]),
    ]
    model = _model(
        nodes, [("x", [1, 4])], [("mu", [1, 4]), ("dec", [1, 5]), ("dec2", [1, 2])],
        {"t": np.sort(rng.normal(0, 2, (4, 15)), axis=1), "scale": np.float32(0.0625),
         "w": rng.integers(-7, 8, (4, 5)), "w2": rng.integers(-7, 8, (4, 2))},
        value_info=[("q", [1, 4])], datatypes={"q": "INT4"},
    )
    x = rng.normal(0, 3, (1, 4)).astype(np.float32)
    want = _run(model, x)
    cloned = copy.deepcopy(model).transform(CloneForkedLinearPerConsumer())
    muls = cloned.get_nodes_by_op_type("Mul")
    assert len(muls) == 3  # the output's own copy + one per MatMul
    assert all(len(cloned.find_consumers(m.output[0]) or []) <= 1 for m in muls)
    for a, b in zip(want, _run(cloned, x)):
        assert np.array_equal(a, b)


# --------------------------------------------------------------------------- dense layout
def test_nchw_rows_for_nhwc_is_the_layout_permutation():
    from snapseal.hw.transforms.dense_layout import nchw_rows_for_nhwc

    x = np.random.default_rng(2).normal(size=(1, 3, 2, 5))  # NCHW
    rows = nchw_rows_for_nhwc(5, 3, 2)
    assert np.array_equal(x.transpose(0, 3, 1, 2).reshape(1, -1)[0][rows], x.reshape(1, -1)[0])


def test_absorb_transpose_flatten_into_two_dense_heads_same_outputs():
    from onnx import helper

    from snapseal.hw.transforms.dense_layout import AbsorbTransposeFlattenIntoDense

    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t_out"], perm=[0, 3, 1, 2]),
        helper.make_node("Flatten", ["t_out"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w_mu"], ["mu"]),
        helper.make_node("MatMul", ["flat", "w_sigma"], ["sigma"]),
    ]
    model = _model(
        nodes, [("x", [1, 2, 2, 3])], [("mu", [1, 4]), ("sigma", [1, 4])],
        {"w_mu": rng.integers(-7, 8, (12, 4)), "w_sigma": rng.integers(-7, 8, (12, 4))},
        value_info=[("t_out", [1, 3, 2, 2]), ("flat", [1, 12])],
    )
    x = rng.integers(-32, 32, (1, 2, 2, 3)).astype(np.float32)
    want = _run(model, x)
    absorbed = copy.deepcopy(model).transform(AbsorbTransposeFlattenIntoDense())
    assert "Transpose" not in [n.op_type for n in absorbed.graph.node]
    for a, b in zip(want, _run(absorbed, x)):
        assert np.array_equal(a, b)


# --------------------------------------------------------------------------- driver settings
def test_merge_finn_settings_takes_finn_shapes_keeps_tails():
    from snapseal.hw.driver_settings import merge_finn_settings

    predicted = {"idt": ["UINT8"], "ishape_normal": [[1, 64, 64, 1]], "odt": ["INT8"], "output_tails": [{"output_name": "mu_z"}],
                 "max_batch": 8}
    finn = {"driver_information": {"io_shape_dict": {"idt": ["DataType['UINT8']"], "odt": ["DataType['INT7']"],
                                                     "ishape_normal": [[1, 64, 64, 1]], "odma_names": ["odma0"]}}}
    merged = merge_finn_settings(predicted, finn)
    assert merged["odt"] == ["INT7"] and merged["idt"] == ["UINT8"] and merged["odma_names"] == ["odma0"]
    assert merged["output_tails"] == predicted["output_tails"] and merged["max_batch"] == 8
