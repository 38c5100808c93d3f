"""The numpy emulation engine (daemon/accel/numpy_graph.py): bit for bit the ``ort`` engine.

Tests that need onnxruntime, onnx or qonnx skip where they are missing (a numpy-1.21 or ARM
environment); the golden-vector and refusal tests need numpy only.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from snapseal.daemon.accel import make_accelerator, numpy_graph
from snapseal.daemon.accel.emulate import EmulateAccelerator
from snapseal.daemon.accel.host_tail import integers_of
from snapseal.daemon.accel.numpy_graph import Graph, Node, NumpyGraph, parse_onnx, read_onnx
from snapseal.daemon.bundle import GRAPH_NAMES, load_bundle
from snapseal.daemon.cli.selftest import compare_output, load_golden
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.likelihood import log_rp


@pytest.fixture(scope="module")
def bundle():
    return load_bundle()


@pytest.fixture(scope="module")
def golden(bundle):
    return load_golden(bundle.golden_dir)


@pytest.fixture(scope="module")
def random_crops() -> np.ndarray:
    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = (128 + 100 * np.sin(xx / 5.0) * np.cos(yy / 11.0)).astype(np.uint8)
    flat = [np.full((64, 64), v, np.uint8) for v in (0, 255)]
    noise = [rng.integers(0, 256, (64, 64)).astype(np.uint8) for _ in range(20)]
    return np.stack([smooth, 255 - smooth, *flat, *noise])


@pytest.fixture(scope="module")
def numpy_engine(bundle):
    return EmulateAccelerator(bundle, engine="numpy")


def _latents(n: int, dim: int) -> np.ndarray:
    """Host-sampled z: floats, some beyond the 8-bit input quantizer's range (it clips)."""
    rng = np.random.default_rng(3)
    return (rng.standard_normal((n, dim)) * 4).astype(np.float32)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a, b) and np.array_equal(a.view(np.uint32), b.view(np.uint32))


# --- numpy only: golden vectors, the reader, refusals -----------------------------------------


def test_golden_vectors_integers_equal(bundle, golden, numpy_engine):
    meta, crops, expected = golden
    raw = numpy_engine.run_forward_at_mean_raw(crops)
    for tail in meta["output_tails"]:
        name = tail["output_name"]
        compared, differing, crops_differing = compare_output(meta, expected[name], name, integers_of(tail, raw[name]))
        assert compared > 0
        assert (differing, crops_differing) == (0, 0), name


def test_encoder_and_forward_at_mean_agree(bundle, golden, numpy_engine):
    crops = golden[1][:8]
    latent = numpy_engine.encode(crops)
    raw = numpy_engine.run_forward_at_mean_raw(crops)
    assert _same_bits(latent.mu, raw["mu_z"].reshape(len(crops), -1))
    assert _same_bits(latent.log_sigma, raw["log_sigma_z"].reshape(len(crops), -1))
    assert _same_bits(numpy_engine.decode(latent.mu).mu, numpy_engine.forward_at_mean(crops)[1].mu)


def test_bundle_accumulators_are_exact_in_float32(bundle):
    """The premise of bit-exactness: each conv's inputs are quantized with power-of-two scales
    (per tensor for activations, per output channel for weights), so every product of one
    output is an integer times one scale, and the largest possible sum stays below 2**24."""
    checked = 0
    for name in GRAPH_NAMES:
        graph = read_onnx(bundle.graphs[name])
        init = graph.initializers
        producer = {node.outputs[0]: node for node in graph.nodes}
        for node in graph.nodes:
            if node.op_type not in ("Conv", "ConvTranspose"):
                continue
            x_quant, w_quant = producer[node.inputs[0]], producer[node.inputs[1]]
            assert x_quant.op_type == w_quant.op_type == "Quant", node.name
            x_scale, w_scale = init[x_quant.inputs[1]], init[w_quant.inputs[1]]
            for scale in (x_scale, w_scale):
                assert np.all(np.frexp(scale.astype(np.float64))[0] == 0.5), node.name
            assert x_scale.size == 1
            x_bits, x_signed = int(init[x_quant.inputs[3]]), x_quant.attrs.get("signed", 1)
            x_max = 2 ** (x_bits - 1) if x_signed else 2**x_bits - 1
            w_int = np.round(init[w_quant.inputs[0]] / w_scale)
            w_bits = int(init[w_quant.inputs[3]])
            w_int = np.clip(w_int, -(2 ** (w_bits - 1)), 2 ** (w_bits - 1) - 1)
            out_axis = 0 if node.op_type == "Conv" else 1  # Conv M x C x kh x kw, ConvTranspose C x M x kh x kw
            assert w_scale.reshape(-1).size in (1, w_int.shape[out_axis])
            largest_sum = np.abs(np.moveaxis(w_int, out_axis, 0)).reshape(w_int.shape[out_axis], -1).sum(1).max() * x_max
            assert largest_sum < 2**24, (name, node.name, largest_sum)
            checked += 1
    assert checked >= 2 * len(GRAPH_NAMES)


def test_batch_size_and_tap_chunking_do_not_change_results(bundle, random_crops, monkeypatch):
    crops = random_crops[:7]
    reference = EmulateAccelerator(bundle, engine="numpy", batch_size=len(crops)).run_forward_at_mean_raw(crops)
    monkeypatch.setattr(numpy_graph, "COLUMNS_BUDGET", 1)  # one kernel tap per matmul
    small = EmulateAccelerator(bundle, engine="numpy", batch_size=3).run_forward_at_mean_raw(crops)
    for name in reference:
        assert _same_bits(reference[name], small[name]), name


def test_cpu_backend_without_onnxruntime_points_to_emulate(bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(SnapsealError, match="needs onnxruntime.*use backend 'emulate'"):
        make_accelerator("cpu", bundle)


def test_missing_onnxruntime_falls_back_to_numpy_with_same_scores(bundle, random_crops, monkeypatch, caplog):
    crops = random_crops[:4]
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        want = None
    else:
        ort = EmulateAccelerator(bundle, engine="ort")
        want = log_rp(crops, ort.encode(crops), ort.decode, bundle.epsilon)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with caplog.at_level(logging.INFO, logger="snapseal.accel"):
        fallback = make_accelerator("emulate", bundle)
    assert fallback.engine == "numpy"
    lines = [r.getMessage() for r in caplog.records if r.name == "snapseal.accel"]
    assert len(lines) == 1 and "numpy engine" in lines[0]
    scores = log_rp(crops, fallback.encode(crops), fallback.decode, bundle.epsilon)
    assert np.all(np.isfinite(scores))
    if want is not None:
        assert np.array_equal(scores, want)


def test_missing_qonnx_also_falls_back_to_numpy(bundle, monkeypatch, caplog):
    """An image with onnxruntime but no qonnx (the Ultra96-V2's requirements) cannot run ``ort``."""
    pytest.importorskip("onnxruntime")  # without it the fallback names onnxruntime (tested above)
    monkeypatch.setitem(sys.modules, "qonnx", None)
    monkeypatch.setitem(sys.modules, "qonnx.core.modelwrapper", None)
    with caplog.at_level(logging.INFO, logger="snapseal.accel"):
        accel = EmulateAccelerator(bundle)
    assert accel.engine == "numpy"
    assert any("qonnx" in r.getMessage() and "numpy engine" in r.getMessage() for r in caplog.records)
    assert accel.encode(np.zeros((2, 64, 64), np.uint8)).mu.shape == (2, bundle.latent_dim)


def test_default_engine_stays_ort_where_onnxruntime_imports(bundle):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("qonnx")
    assert EmulateAccelerator(bundle).engine == "ort"


def test_corrupt_graph_file_is_one_line(tmp_path, bundle):
    data = bundle.graphs["encoder"].read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(SnapsealError, match="cannot read ONNX graph") as info:
        NumpyGraph.load(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(SnapsealError, match="cannot read ONNX graph"):
        read_onnx(tmp_path / "missing.onnx")


def _graph(*nodes: Node, initializers=None) -> Graph:
    return Graph(nodes=tuple(nodes), initializers=dict(initializers or {}), inputs=("x",), outputs=(nodes[-1].outputs[0],),
                 opsets={"": 13})


W = np.ones((2, 2, 3, 3), np.float32)


@pytest.mark.parametrize("node, match", [
    (Node("Sigmoid", "", "s", ("x",), ("y",), {}), r"op Sigmoid is not supported"),
    (Node("Conv", "", "c", ("x", "w"), ("y",), {"group": 2}), r"\(Conv\): group=2"),
    (Node("Conv", "", "c", ("x", "w"), ("y",), {"auto_pad": "SAME_UPPER"}), r"auto_pad='SAME_UPPER'"),
    (Node("Conv", "", "c", ("x", "w"), ("y",), {"strides": [1, 1], "foo": 3}), r"attribute foo=3"),
    (Node("ConvTranspose", "", "t", ("x", "w"), ("y",), {"output_shape": [8, 8]}), r"attribute output_shape"),
    (Node("ConvTranspose", "", "t", ("x", "w"), ("y",), {"strides": [2, 2], "output_padding": [2, 0]}), r"output_padding"),
    (Node("Resize", "", "r", ("x", "", "s"), ("y",), {"mode": "linear"}), r"\(Resize\): mode='linear'"),
    (Node("Resize", "", "r", ("x", "", "s"), ("y",), {"coordinate_transformation_mode": "tf_crop_and_resize"}),
     r"coordinate_transformation_mode"),
    (Node("Quant", "qonnx.custom_op.general", "q", ("x", "s3", "zp", "bits"), ("y",), {}), r"\(Quant\): a scale that is not a power of two"),
    (Node("Quant", "qonnx.custom_op.general", "q", ("x", "s", "zp", "bits"), ("y",), {"rounding_mode": "FLOOR"}), r"rounding_mode='FLOOR'"),
    (Node("Quant", "qonnx.custom_op.general", "q", ("x", "s", "zp", "bits"), ("y",), {"signed": 1, "foo": 2}), r"attribute foo=2"),
])
def test_unsupported_ops_and_attributes_are_refused_naming_them(node, match):
    consts = {"w": W, "s": np.array([1, 1, 2, 2], np.float32), "s3": np.float32(0.3), "zp": np.float32(0), "bits": np.float32(8)}
    consts["s"] = consts["s"] if node.op_type == "Resize" else np.float32(0.5)
    with pytest.raises(SnapsealError, match=match) as info:
        NumpyGraph(_graph(node, initializers={k: np.asarray(v) for k, v in consts.items()}), where="g.onnx")
    assert str(info.value).startswith("g.onnx: node ") and "\n" not in str(info.value)


def test_unsorted_graph_and_bad_shapes_are_one_line():
    add = Node("Add", "", "a", ("x", "t"), ("y",), {})
    make_t = Node("Mul", "", "m", ("x", "x"), ("t",), {})
    with pytest.raises(SnapsealError, match="reads 't' before any node computes it"):
        NumpyGraph(_graph(add, make_t), where="g.onnx")
    graph = NumpyGraph(_graph(Node("Add", "", "a", ("x", "c"), ("y",), {}), initializers={"c": np.ones(3, np.float32)}),
                       where="g.onnx")
    with pytest.raises(SnapsealError, match=r"g.onnx: node 'a' \(Add\): ") as info:
        graph({"x": np.ones((2, 4), np.float32)})
    assert "\n" not in str(info.value)


def test_elementwise_ops_follow_onnx():
    x = np.array([[-2.5, -0.5, 0.0, 0.5, 1.5, 2.5, 7.0]], np.float32)
    lo, hi = np.float32(-1), np.float32(2)
    nodes = (Node("Round", "", "r", ("x",), ("r",), {}), Node("Clip", "", "c", ("r", "lo", "hi"), ("c",), {}),
             Node("LeakyRelu", "", "l", ("c",), ("l",), {"alpha": 0.125}), Node("Clip", "", "c2", ("l", "", "hi"), ("y",), {}))
    graph = NumpyGraph(_graph(*nodes, initializers={"lo": lo, "hi": hi}))
    # round half to even [-2, -0, 0, 0, 2, 2, 7], clip to [-1, 2], LeakyRelu 1/8, clip above 2
    want = np.array([[-0.125, -0.0, 0.0, 0.0, 2.0, 2.0, 2.0]], np.float32)
    assert _same_bits(graph({"x": x})["y"], want)


# --- against onnxruntime: the bundle's graphs, then each op alone ---------------------------------


def test_bit_exact_with_ort_engine_every_graph_every_output(bundle, golden, random_crops, numpy_engine):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("qonnx")  # the ort engine folds the weights with qonnx
    ort = EmulateAccelerator(bundle, engine="ort")
    crops = np.concatenate([golden[1], random_crops])
    for graph in ("encoder", "forward_at_mean"):
        want = ort._run(graph, ort._pixels(crops))
        got = numpy_engine._run(graph, numpy_engine._pixels(crops))
        assert set(got) == set(want)
        for name in want:
            assert _same_bits(got[name], want[name]), (graph, name)
    z = _latents(50, bundle.latent_dim)[:, :, None, None]
    want, got = ort._run("decoder", z), numpy_engine._run("decoder", z)
    assert _same_bits(got["decoder_out"], want["decoder_out"])


def test_runs_the_graph_the_ort_engine_runs(bundle, random_crops):
    """The rewritten graph (folded weights, Quant as Div/Round/Clip/Mul) gives the same bits,
    and the weights numpy_graph folds are qonnx's."""
    pytest.importorskip("qonnx")
    pytest.importorskip("onnxruntime")
    from snapseal.daemon.accel.emulate import OrtRunner, quant_to_standard_ops
    from snapseal.daemon.accel.qonnx_graph import fold_weight_quants, load_wrapper

    pixels = random_crops.astype(np.float32)[:, None]
    for name in GRAPH_NAMES:
        folded = fold_weight_quants(load_wrapper(bundle.graphs[name]))
        own = NumpyGraph.load(bundle.graphs[name])
        for tensor in own.constants:
            reference = folded.get_initializer(tensor)
            if reference is not None:
                assert _same_bits(own.constants[tensor], reference), tensor
        standard = quant_to_standard_ops(folded).model.SerializeToString()
        graph = NumpyGraph(parse_onnx(standard))
        assert {s.node.op_type for s in graph.steps} >= {"Div", "Round", "Clip", "Mul"}
        x = pixels if name != "decoder" else _latents(len(pixels), bundle.latent_dim)[:, :, None, None]
        want = OrtRunner(bundle.graphs[name])(x)
        got = graph({graph.inputs[0]: x})
        for tensor in want:
            assert _same_bits(got[tensor], want[tensor]), (name, tensor)


def test_reader_matches_the_onnx_package(bundle):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    for name in GRAPH_NAMES:
        model = onnx.load(str(bundle.graphs[name]))
        graph = read_onnx(bundle.graphs[name])
        assert graph.opsets == {o.domain: o.version for o in model.opset_import}
        assert graph.outputs == tuple(o.name for o in model.graph.output)
        declared = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in model.graph.input}
        assert graph.input_shapes == {name: declared[name] for name in graph.inputs}
        assert set(graph.initializers) == {i.name for i in model.graph.initializer}
        for init in model.graph.initializer:
            assert np.array_equal(graph.initializers[init.name], numpy_helper.to_array(init))
            assert graph.initializers[init.name].dtype == numpy_helper.to_array(init).dtype
        assert len(graph.nodes) == len(model.graph.node)
        for ours, theirs in zip(graph.nodes, model.graph.node):
            assert (ours.op_type, ours.domain, ours.name) == (theirs.op_type, theirs.domain, theirs.name)
            assert ours.inputs == tuple(theirs.input) and ours.outputs == tuple(theirs.output)
            want = {a.name: helper.get_attribute_value(a) for a in theirs.attribute}
            want = {k: v.decode() if isinstance(v, bytes) else (list(v) if isinstance(v, (list, tuple)) else v) for k, v in want.items()}
            assert ours.attrs == pytest.approx(want) if all(isinstance(v, float) for v in want.values()) else ours.attrs == want


@pytest.fixture()
def helper():
    """onnx.helper, to build one-node models for onnxruntime (skips without onnx/onnxruntime)."""
    pytest.importorskip("onnxruntime")
    return pytest.importorskip("onnx.helper")


def _run_both(node, inputs: dict, initializers: dict, opset: int = 19):
    """One node as an ONNX model: numpy_graph's and onnxruntime's outputs."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [node], "one",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    data = model.SerializeToString()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    got = NumpyGraph(parse_onnx(data))(inputs)[node.output[0]]
    return got, want


def _ints(rng, shape, scale, bound):
    return (rng.integers(-bound, bound + 1, shape) * scale).astype(np.float32)


@pytest.mark.parametrize("kernel, strides, pads, dilations, bias", [
    ((4, 4), (2, 2), (1, 1, 1, 1), (1, 1), False),
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), True),
    ((2, 2), (1, 1), (0, 0, 0, 0), (1, 1), True),
    ((3, 2), (2, 1), (2, 0, 1, 1), (2, 1), False),
    ((1, 1), (3, 3), (0, 1, 0, 2), (1, 1), True),
])
@pytest.mark.parametrize("channels_in, channels_out", [(5, 4), (2, 6)])  # both ways of numpy_graph.conv
def test_conv_matches_onnxruntime(helper, kernel, strides, pads, dilations, bias, channels_in, channels_out):
    rng = np.random.default_rng(sum(kernel) + sum(pads) + channels_in)
    x = _ints(rng, (3, channels_in, 11, 9), 0.25, 31)
    w = _ints(rng, (channels_out, channels_in, *kernel), 0.0625, 8)
    inits = {"w": w, **({"b": rng.standard_normal(channels_out).astype(np.float32)} if bias else {})}
    node = helper.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["y"], kernel_shape=list(kernel),
                            strides=list(strides), pads=list(pads), dilations=list(dilations), group=1)
    got, want = _run_both(node, {"x": x}, inits)
    assert _same_bits(got, want)


@pytest.mark.parametrize("kernel, strides, pads, dilations, output_padding, bias", [
    ((4, 4), (2, 2), (1, 1, 1, 1), (1, 1), (0, 0), False),
    ((2, 2), (1, 1), (0, 0, 0, 0), (1, 1), (0, 0), False),
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), True),
    ((3, 2), (3, 2), (0, 1, 2, 0), (1, 2), (2, 1), True),
])
def test_conv_transpose_matches_onnxruntime(helper, kernel, strides, pads, dilations, output_padding, bias):
    rng = np.random.default_rng(sum(kernel) * 7 + sum(output_padding))
    x = _ints(rng, (2, 5, 6, 7), 0.5, 31)
    w = _ints(rng, (5, 3, *kernel), 0.03125, 8)
    inits = {"w": w, **({"b": rng.standard_normal(3).astype(np.float32)} if bias else {})}
    node = helper.make_node("ConvTranspose", ["x", "w"] + (["b"] if bias else []), ["y"], kernel_shape=list(kernel),
                            strides=list(strides), pads=list(pads), dilations=list(dilations),
                            output_padding=list(output_padding))
    got, want = _run_both(node, {"x": x}, inits)
    assert _same_bits(got, want)


@pytest.mark.parametrize("coordinates", ["asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners"])
@pytest.mark.parametrize("nearest", ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"])
@pytest.mark.parametrize("scales, sizes", [((1, 1, 2, 2), None), ((1, 1, 3, 1.5), None), ((1, 1, 0.5, 0.75), None),
                                           (None, (2, 3, 1, 10))])
def test_resize_nearest_matches_onnxruntime(helper, coordinates, nearest, scales, sizes):
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 6)).astype(np.float32)
    inits = {"roi": np.zeros(0, np.float32)}
    if scales is not None:
        inits["scales"] = np.array(scales, np.float32)
        names = ["x", "", "scales"]
    else:
        inits["sizes"] = np.array(sizes, np.int64)
        names = ["x", "", "", "sizes"]
    node = helper.make_node("Resize", names, ["y"], mode="nearest", coordinate_transformation_mode=coordinates,
                            nearest_mode=nearest)
    got, want = _run_both(node, {"x": x}, inits)
    assert _same_bits(got, want)


@pytest.mark.build
@pytest.mark.slow
def test_nearest_upsampling_model_matches_ort_engine(tmp_path):
    """The model's other decoder (quantize/model.py, decoder_upsampling="nearest": Resize + conv)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    pytest.importorskip("onnxruntime")
    from snapseal.daemon.accel.emulate import OrtRunner
    from snapseal.quantize.export import export_qonnx_graphs
    from snapseal.quantize.model import VAE, VAEConfig

    torch.manual_seed(0)
    vae = VAE(VAEConfig(widths=(4, 4, 8, 8, 8), latent_dim=8, decoder_upsampling="nearest"))
    vae.train()
    vae(torch.randint(0, 256, (8, 1, 64, 64)).float())  # batch-norm statistics that are not the identity
    graphs = export_qonnx_graphs(vae, tmp_path)
    pixels = np.random.default_rng(1).integers(0, 256, (6, 1, 64, 64)).astype(np.float32)
    own = NumpyGraph.load(graphs.forward_at_mean)
    assert "Resize" in {s.node.op_type for s in own.steps}
    want = OrtRunner(graphs.forward_at_mean)(pixels)
    got = own({"pixels": pixels})
    for name in want:
        assert _same_bits(got[name], want[name]), name
