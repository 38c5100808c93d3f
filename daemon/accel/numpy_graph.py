"""A small pure-numpy executor for the bundle's emulation graphs (the ``numpy`` emulation engine).

Why it exists: a PYNQ-Z2 (armv7l) has no onnxruntime — PyPI has neither an armv7l wheel nor an
sdist — and qonnx's executor runs its standard ops through onnxruntime too. Without this module
a camera without a bitstream could not score a crop. It needs numpy only (1.21 or newer: the
PYNQ-Z2 image ships 1.21.5); even the ``.onnx`` file is read here, by a minimal protobuf reader
(``read_onnx``), so neither ``onnx`` nor ``qonnx`` has to be installed on the board.

What it runs: exactly the ops of snapseal's QONNX graphs (``quantize/export.py``) — with the
Quant nodes as exported or after ``qonnx_graph.fold_weight_quants`` plus
``emulate.quant_to_standard_ops`` (the graph the ``ort`` engine runs):

=============  =================================================================================
Quant          qonnx's integer quantizer. On constants (the weights) qonnx's own maths, folded
               once at load; on activations only power-of-two scale, zero zero-point and ROUND
               (as Div, Round, Clip, Mul), the rule the ``ort`` rewrite enforces
Conv           2-D, group 1, strides, pads, dilations, optional bias; im2col + float32 matmul
               (a few kernel taps at a time: at most ``COLUMNS_BUDGET`` bytes of columns)
ConvTranspose  2-D, group 1, strides, pads, dilations, output_padding, optional bias; float32
               matmul + col2im (the same way)
Resize         mode nearest; coordinate_transformation_mode asymmetric, half_pixel,
               pytorch_half_pixel or align_corners; every nearest_mode; constant scales or sizes
LeakyRelu, Add, Mul, Div, Round, Clip   elementwise float32 with numpy broadcasting (as ONNX)
=============  =================================================================================

Anything else (another op, another attribute value) is refused when the graph is loaded, with
one SnapsealError naming the file, the node, the op and the attribute.

Why it is bit-exact with onnxruntime: every activation and weight is an integer times a power of
two (per tensor, per output channel), and the sums of a convolution stay far below 2**24 in
units of the product's scale, so a float32 accumulation is exact in any order (any BLAS,
im2col, col2im: all the same numbers; the test file checks this premise on the bundle). What
is not exact (the batch-norm Mul and Add, a bias) is one elementwise IEEE float32 operation,
done as its own step here exactly as the graph says (no fusing). ``tests/daemon/test_numpy_graph.py``
compares every output tensor bit for bit with the ``ort`` engine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from snapseal.daemon.errors import SnapsealError

# ---------------------------------------------------------------------------------------------
# Reading an .onnx file without the onnx package: the few protobuf messages the graphs use.
# Wire format: each field is a varint key (field number << 3 | wire type) and a value: varint
# (0), 8 bytes (1), length-prefixed bytes (2) or 4 bytes (5). Field numbers from onnx.proto.
# ---------------------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message; value is an int or bytes."""
    out = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    if pos != end:
        raise ValueError("truncated protobuf message")
    return out


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _repeated_ints(items: list[tuple[int, Any]]) -> list[int]:
    """A repeated int64 field, packed (wire type 2) or not."""
    out: list[int] = []
    for wire, value in items:
        if wire == 2:
            pos = 0
            while pos < len(value):
                v, pos = _varint(value, pos)
                out.append(_signed64(v))
        else:
            out.append(_signed64(value))
    return out


def _repeated_floats(items: list[tuple[int, Any]]) -> list[float]:
    out: list[float] = []
    for _, value in items:
        out.extend(struct.unpack(f"<{len(value) // 4}f", value))
    return out


def _grouped(buf: bytes) -> dict[int, list[tuple[int, Any]]]:
    groups: dict[int, list[tuple[int, Any]]] = {}
    for number, wire, value in _fields(buf):
        groups.setdefault(number, []).append((wire, value))
    return groups


def _string(groups: dict, number: int, default: str = "") -> str:
    items = groups.get(number)
    return items[-1][1].decode("utf-8") if items else default


def _strings(groups: dict, number: int) -> list[str]:
    return [value.decode("utf-8") for _, value in groups.get(number, [])]


# TensorProto.DataType -> numpy dtype, for the types a graph's constants use
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64}


def _tensor(buf: bytes) -> tuple[str, np.ndarray]:
    g = _grouped(buf)
    name = _string(g, 8)
    dims = _repeated_ints(g.get(1, []))
    data_type = g[2][-1][1] if 2 in g else 0
    if data_type not in _DTYPES:
        raise ValueError(f"tensor {name!r}: data type {data_type} is not supported")
    if 14 in g and g[14][-1][1] == 1:
        raise ValueError(f"tensor {name!r}: external data is not supported")
    dtype = np.dtype(_DTYPES[data_type])
    if 9 in g:  # raw_data, little endian
        array = np.frombuffer(g[9][-1][1], dtype=dtype.newbyteorder("<")).astype(dtype)
    elif 4 in g:  # float_data
        array = np.array(_repeated_floats(g[4]), dtype=dtype)
    elif 7 in g:  # int64_data
        array = np.array(_repeated_ints(g[7]), dtype=dtype)
    elif 5 in g:  # int32_data (also holds int8/uint8/int16/bool)
        array = np.array(_repeated_ints(g[5]), dtype=np.int64).astype(dtype)
    elif 10 in g:  # double_data
        array = np.array(struct.unpack(f"<{sum(len(v) for _, v in g[10]) // 8}d", b"".join(v for _, v in g[10])), dtype=dtype)
    else:
        array = np.zeros(0, dtype=dtype)
    size = int(np.prod(dims)) if dims else 1
    if array.size != size:
        raise ValueError(f"tensor {name!r}: {array.size} values for shape {tuple(dims)}")
    return name, array.reshape(dims)


def _attribute(buf: bytes) -> tuple[str, Any]:
    g = _grouped(buf)
    name = _string(g, 1)
    kind = g[20][-1][1] if 20 in g else 0
    # AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7, STRINGS 8
    if kind == 1:
        return name, struct.unpack("<f", g[2][-1][1])[0] if 2 in g else 0.0
    if kind == 2:
        return name, _signed64(g[3][-1][1]) if 3 in g else 0
    if kind == 3:
        return name, _string(g, 4)
    if kind == 4:
        return name, _tensor(g[5][-1][1])[1]
    if kind == 6:
        return name, _repeated_floats(g.get(7, []))
    if kind == 7:
        return name, _repeated_ints(g.get(8, []))
    if kind == 8:
        return name, _strings(g, 9)
    raise ValueError(f"attribute {name!r}: attribute type {kind} is not supported")


@dataclass(frozen=True)
class Node:
    op_type: str
    domain: str
    name: str
    inputs: tuple[str, ...]  # "" = an omitted optional input
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


@dataclass(frozen=True)
class Graph:
    """An ONNX graph as plain data: nodes in file order, constants, graph inputs and outputs."""

    nodes: tuple[Node, ...]
    initializers: dict[str, np.ndarray]
    inputs: tuple[str, ...]  # graph inputs that are not initializers
    outputs: tuple[str, ...]
    opsets: dict[str, int]  # domain -> version
    input_shapes: dict[str, tuple] = field(default_factory=dict)  # declared dims: int, or a name / None


def parse_onnx(data: bytes) -> Graph:
    """An ONNX ModelProto (bytes) as a Graph. ValueError for anything it cannot represent."""
    model = _grouped(data)
    opsets = {}
    for _, value in model.get(8, []):  # OperatorSetIdProto: domain 1, version 2
        g = _grouped(value)
        opsets[_string(g, 1)] = int(g[2][-1][1]) if 2 in g else 0
    if 7 not in model:
        raise ValueError("the model holds no graph")
    graph = _grouped(model[7][-1][1])
    if 15 in graph:
        raise ValueError("sparse initializers are not supported")
    initializers = dict(_tensor(value) for _, value in graph.get(5, []))
    nodes = []
    for _, value in graph.get(1, []):
        g = _grouped(value)
        nodes.append(Node(op_type=_string(g, 4), domain=_string(g, 7), name=_string(g, 3),
                          inputs=tuple(_strings(g, 1)), outputs=tuple(_strings(g, 2)),
                          attrs=dict(_attribute(v) for _, v in g.get(5, []))))
    declared = [_value_info(v) for _, v in graph.get(11, [])]
    inputs = tuple(name for name, _ in declared if name not in initializers)
    outputs = tuple(_string(_grouped(v), 1) for _, v in graph.get(12, []))
    return Graph(nodes=tuple(nodes), initializers=initializers, inputs=inputs, outputs=outputs, opsets=opsets,
                 input_shapes={name: shape for name, shape in declared if name in inputs})


def _value_info(buf: bytes) -> tuple[str, tuple]:
    """ValueInfoProto: name 1, type 2 -> TypeProto.tensor_type 1 -> shape 2 -> dim 1 ->
    dim_value 1 | dim_param 2."""
    g = _grouped(buf)
    dims: list = []
    tensor = _grouped(g[2][-1][1]).get(1) if 2 in g else None
    shape = _grouped(tensor[-1][1]).get(2) if tensor else None
    for _, dim in (_grouped(shape[-1][1]).get(1, []) if shape else []):
        d = _grouped(dim)
        dims.append(_signed64(d[1][-1][1]) if 1 in d else (_string(d, 2) or None))
    return _string(g, 1), tuple(dims)


def read_onnx(path: Path) -> Graph:
    """The graph in an .onnx file, or one SnapsealError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapsealError(f"{path}: cannot read ONNX graph ({exc.strerror})") from None
    try:
        return parse_onnx(data)
    except (ValueError, IndexError, KeyError, UnicodeDecodeError, struct.error) as exc:
        raise SnapsealError(f"{path}: cannot read ONNX graph ({exc})") from None


# ---------------------------------------------------------------------------------------------
# The ops. Each entry of OPS builds a kernel for one node: ``build(attrs, consts)`` checks the
# node's attributes (refusing what it does not support) and returns ``kernel(*inputs) -> output``.
# ``consts`` holds the node's inputs that are constants at load (None for the others).
# ---------------------------------------------------------------------------------------------

Kernel = Callable[..., np.ndarray]
F32 = np.float32


class Attributes:
    """A node's attributes; every one must be read by its op's builder, or the node is refused."""

    def __init__(self, node: Node, where: str) -> None:
        self.node = node
        self.where = where
        self._read: set[str] = set()

    def get(self, name: str, default: Any) -> Any:
        self._read.add(name)
        return self.node.attrs.get(name, default)

    def ints(self, name: str, default: list[int]) -> list[int]:
        return [int(v) for v in self.get(name, default)]

    def refuse(self, what: str) -> SnapsealError:
        return SnapsealError(f"{self.where}: node {self.node.name or self.node.outputs[0]!r} ({self.node.op_type}): "
                             f"{what} is not supported by the numpy engine")

    def require(self, name: str, default: Any, allowed: tuple) -> Any:
        value = self.get(name, default)
        if value not in allowed:
            raise self.refuse(f"{name}={value!r} (supported: {', '.join(repr(a) for a in allowed)})")
        return value

    def check_all_read(self) -> None:
        unknown = sorted(set(self.node.attrs) - self._read)
        if unknown:
            raise self.refuse(f"attribute {unknown[0]}={self.node.attrs[unknown[0]]!r}")


def _is_power_of_two(values: np.ndarray) -> bool:
    mantissa, _ = np.frexp(np.asarray(values, dtype=np.float64))
    return bool(np.all(mantissa == 0.5))


def quant(attrs: Attributes, consts: list) -> Kernel:
    """qonnx Quant: y = (clip(round(x / scale + zp), lo, hi) - zp) * scale, ROUND = half to even."""
    signed = bool(attrs.get("signed", 1))
    narrow = bool(attrs.get("narrow", 0))
    rounding = str(attrs.get("rounding_mode", "ROUND")).upper()
    attrs.check_all_read()
    if len(consts) != 4 or any(c is None for c in consts[1:]):
        raise attrs.refuse("a Quant whose scale, zero point or bit width is not a constant")
    scale, zero_point, bits = (np.asarray(c, dtype=F32) for c in consts[1:])
    if bits.size != 1 or bits.item() != int(bits.item()) or int(bits.item()) < 2:
        raise attrs.refuse(f"bit width {bits.ravel().tolist()}")
    width = int(bits.item())
    lo = -(2 ** (width - 1)) + int(narrow) if signed else 0
    hi = 2 ** (width - 1) - 1 if signed else 2**width - 1 - int(narrow)
    lo32, hi32 = F32(lo), F32(hi)
    if consts[0] is not None:  # the weights: exactly qonnx's int_quant, folded once at load
        if rounding not in ("ROUND", "HALF_EVEN"):
            raise attrs.refuse(f"rounding_mode={rounding!r} on constants (supported: 'ROUND')")

        def folded(x, *_):
            y = x / scale + zero_point
            y = np.round(np.where(y > hi32, hi32, np.where(y < lo32, lo32, y)))
            return (y - zero_point) * scale

        return folded
    # activations: the rewrite emulate.quant_to_standard_ops makes (Div, Round, Clip, Mul)
    if rounding != "ROUND":
        raise attrs.refuse(f"rounding_mode={rounding!r} (supported: 'ROUND')")
    if np.any(zero_point != 0):
        raise attrs.refuse("a non-zero zero point")
    if not _is_power_of_two(scale):
        raise attrs.refuse("a scale that is not a power of two (not exact)")

    inverse = (1 / scale).astype(F32)  # exact for a power of two: x * inverse == x / scale

    def activation(x, *_):
        y = np.multiply(x, inverse)
        np.round(y, out=y)
        np.clip(y, lo32, hi32, out=y)
        return np.multiply(y, scale, out=y) if scale.ndim == 0 else y * scale

    return activation


def _pair(attrs: Attributes, name: str, default: int, minimum: int) -> tuple[int, int]:
    values = attrs.ints(name, [default, default])
    if len(values) != 2 or min(values) < minimum:
        raise attrs.refuse(f"{name}={values} (2-D, each at least {minimum})")
    return values[0], values[1]


def _conv_attrs(attrs: Attributes, weight: Optional[np.ndarray]) -> dict[str, Any]:
    """The attributes Conv and ConvTranspose share; 2-D, group 1, explicit pads only."""
    attrs.require("auto_pad", "NOTSET", ("NOTSET",))
    attrs.require("group", 1, (1,))
    kernel = attrs.ints("kernel_shape", list(weight.shape[2:]) if weight is not None else [])
    if len(kernel) != 2 or (weight is not None and tuple(kernel) != weight.shape[2:]):
        raise attrs.refuse(f"kernel_shape={kernel} (2-D, matching the weights)")
    pads = attrs.ints("pads", [0, 0, 0, 0])
    if len(pads) != 4 or min(pads) < 0:
        raise attrs.refuse(f"pads={pads}")
    return {"kernel": tuple(kernel), "strides": _pair(attrs, "strides", 1, 1), "dilations": _pair(attrs, "dilations", 1, 1),
            "pads": tuple(pads)}


def _check_4d(attrs: Attributes, x: np.ndarray) -> None:
    if x.ndim != 4:
        raise attrs.refuse(f"a {x.ndim}-D input (N x C x H x W only)")


# im2col is done a few kernel taps at a time: at most this many bytes of columns at once (a
# 3x3 conv over 16 x 64 x 64 would otherwise need 75 MB for a batch of 32, too much for a board).
COLUMNS_BUDGET = 8 << 20


def _tap_chunks(kh: int, kw: int, bytes_per_tap: int) -> list[list[tuple[int, int]]]:
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    size = max(1, COLUMNS_BUDGET // max(1, bytes_per_tap))
    return [taps[k : k + size] for k in range(0, len(taps), size)]


def conv(attrs: Attributes, consts: list) -> Kernel:
    """Conv as matmuls over kernel taps, one of two ways (the same sums, exact either way):

    - im2col: for each chunk of taps, the input windows as columns (taps*C) x (N*OH*OW) times
      the weights M x (taps*C), summed over the chunks;
    - with stride 1 and fewer output than input channels (a conv to the 2 output planes): every
      tap's weights (taps*M) x C times the padded input itself, each tap's result then added at
      its offset, so the big input is never copied once per tap."""
    p = _conv_attrs(attrs, consts[1] if len(consts) > 1 else None)
    (kh, kw), (sh, sw), (dh, dw), (top, left, bottom, right) = p["kernel"], p["strides"], p["dilations"], p["pads"]

    def run(x, w, b=None):
        _check_4d(attrs, x)
        n, c, h, wd = x.shape
        m = w.shape[0]
        if w.shape[1] != c:
            raise attrs.refuse(f"input channels {c} with weights {w.shape}")
        oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
        ow = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
        xc = np.pad(x.transpose(1, 0, 2, 3), ((0, 0), (0, 0), (top, bottom), (left, right)))  # C x N x Hp x Wp
        hp, wp = xc.shape[2:]
        y = None
        if sh == sw == 1 and m < c:
            flat = xc.reshape(c, n * hp * wp)
            for chunk in _tap_chunks(kh, kw, m * n * hp * wp * 4):
                parts = np.dot(np.concatenate([w[:, :, i, j] for i, j in chunk]), flat).reshape(len(chunk), m, n, hp, wp)
                for t, (i, j) in enumerate(chunk):
                    window = parts[t, :, :, i * dh : i * dh + oh, j * dw : j * dw + ow]
                    y = window.copy() if y is None else np.add(y, window, out=y)
        else:
            w_taps = w.transpose(0, 2, 3, 1)  # M x kh x kw x C
            for chunk in _tap_chunks(kh, kw, c * n * oh * ow * 4):
                cols = np.empty((len(chunk), c, n, oh, ow), dtype=F32)
                for t, (i, j) in enumerate(chunk):
                    cols[t] = xc[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
                weights = np.stack([w_taps[:, i, j] for i, j in chunk], axis=1).reshape(m, len(chunk) * c)
                part = np.dot(weights, cols.reshape(len(chunk) * c, n * oh * ow)).reshape(m, n, oh, ow)
                y = part if y is None else np.add(y, part, out=y)
        y = np.ascontiguousarray(y.transpose(1, 0, 2, 3))
        return y if b is None else y + b.reshape(1, m, 1, 1)

    attrs.check_all_read()
    return run


def conv_transpose(attrs: Attributes, consts: list) -> Kernel:
    """ConvTranspose as matmul + col2im: for each chunk of kernel taps, every input pixel's
    contribution (weights^T (taps*M) x C times the input C x (N*H*W)), added at stride into the
    full output; then the pads are cropped off."""
    p = _conv_attrs(attrs, consts[1] if len(consts) > 1 else None)
    (kh, kw), (sh, sw), (dh, dw), (top, left, bottom, right) = p["kernel"], p["strides"], p["dilations"], p["pads"]
    if "output_shape" in attrs.node.attrs:
        raise attrs.refuse(f"attribute output_shape={attrs.node.attrs['output_shape']!r} (give pads and output_padding)")
    out_pad_h, out_pad_w = _pair(attrs, "output_padding", 0, 0)
    if out_pad_h >= max(sh, dh) or out_pad_w >= max(sw, dw):
        raise attrs.refuse(f"output_padding={[out_pad_h, out_pad_w]} (must be below stride or dilation)")

    def run(x, w, b=None):
        _check_4d(attrs, x)
        n, c, h, wd = x.shape
        if w.shape[0] != c:
            raise attrs.refuse(f"input channels {c} with weights {w.shape}")
        m = w.shape[1]
        x_cols = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(c, n * h * wd)
        full_h = sh * (h - 1) + dh * (kh - 1) + 1 + out_pad_h
        full_w = sw * (wd - 1) + dw * (kw - 1) + 1 + out_pad_w
        out = np.zeros((m, n, full_h, full_w), dtype=F32)
        for chunk in _tap_chunks(kh, kw, m * n * h * wd * 4):
            weights = np.concatenate([w[:, :, i, j].T for i, j in chunk])  # (taps*M) x C
            cols = np.dot(weights, x_cols).reshape(len(chunk), m, n, h, wd)
            for t, (i, j) in enumerate(chunk):
                out[:, :, i * dh : i * dh + sh * (h - 1) + 1 : sh, j * dw : j * dw + sw * (wd - 1) + 1 : sw] += cols[t]
        y = np.ascontiguousarray(out[:, :, top : full_h - bottom, left : full_w - right].transpose(1, 0, 2, 3))
        return y if b is None else y + b.reshape(1, m, 1, 1)

    attrs.check_all_read()
    return run


_COORDINATES = {  # ONNX Resize: output coordinate -> input coordinate, per axis (float32 as onnxruntime)
    "asymmetric": lambda x, scale, n_in, n_out: x / scale,
    "half_pixel": lambda x, scale, n_in, n_out: (x + F32(0.5)) / scale - F32(0.5),
    "pytorch_half_pixel": lambda x, scale, n_in, n_out: (x + F32(0.5)) / scale - F32(0.5) if n_out > 1 else x * F32(0),
    "align_corners": lambda x, scale, n_in, n_out: x * F32(n_in - 1) / F32(n_out - 1) if n_out > 1 else x * F32(0),
}
_NEAREST = {  # input coordinate -> index (then clamped to the input)
    "floor": np.floor,
    "ceil": np.ceil,
    "round_prefer_floor": lambda x: np.floor(x) + (x - np.floor(x) > 0.5),
    "round_prefer_ceil": lambda x: np.floor(x) + (x - np.floor(x) >= 0.5),
}


def resize(attrs: Attributes, consts: list) -> Kernel:
    """Nearest-neighbour Resize (what Brevitas' QuantUpsamplingNearest2d exports): a gather."""
    attrs.require("mode", "nearest", ("nearest",))
    to_input = _COORDINATES[attrs.require("coordinate_transformation_mode", "half_pixel", tuple(_COORDINATES))]
    to_index = _NEAREST[attrs.require("nearest_mode", "round_prefer_floor", tuple(_NEAREST))]
    attrs.require("exclude_outside", 0, (0,))
    attrs.require("antialias", 0, (0,))
    attrs.require("keep_aspect_ratio_policy", "stretch", ("stretch",))
    attrs.get("cubic_coeff_a", -0.75)  # cubic mode only
    attrs.get("extrapolation_value", 0.0)  # tf_crop_and_resize only
    if "axes" in attrs.node.attrs:
        raise attrs.refuse(f"attribute axes={attrs.node.attrs['axes']!r}")
    if len(consts) < 3:
        raise attrs.refuse("Resize before opset 11 (inputs X, roi, scales[, sizes])")
    scales = consts[2] if attrs.node.inputs[2] else None
    sizes = consts[3] if len(consts) > 3 and attrs.node.inputs[3] else None
    if (scales is None or scales.size == 0) == (sizes is None):
        raise attrs.refuse("scales or sizes that are not constant (exactly one of them, as a constant)")
    attrs.check_all_read()

    def run(x, *_):
        if sizes is not None:
            n_out = [int(s) for s in sizes]
            axis_scales = [F32(o) / F32(i) for o, i in zip(n_out, x.shape)]
        else:
            axis_scales = [F32(s) for s in scales]
            n_out = [int(np.floor(F32(i) * s)) for i, s in zip(x.shape, axis_scales)]
        if len(n_out) != x.ndim:
            raise attrs.refuse(f"{len(n_out)} scales for a {x.ndim}-D input")
        y = x
        for axis, (n_in, n, scale) in enumerate(zip(x.shape, n_out, axis_scales)):
            if n == n_in and scale == 1:
                continue
            coords = to_input(np.arange(n, dtype=F32), scale, n_in, n)
            index = np.clip(to_index(coords).astype(np.int64), 0, n_in - 1)
            y = np.take(y, index, axis=axis)
        return np.ascontiguousarray(y)

    return run


def _elementwise(function: Callable[..., np.ndarray]) -> Callable[[Attributes, list], Kernel]:
    def build(attrs: Attributes, consts: list) -> Kernel:
        attrs.check_all_read()
        return function

    build.__doc__ = function.__doc__
    return build


def leaky_relu(attrs: Attributes, consts: list) -> Kernel:
    """x if x >= 0 else alpha * x; for 0 <= alpha <= 1 that is max(x, alpha * x) (one pass less)."""
    alpha = F32(attrs.get("alpha", 0.01))
    attrs.check_all_read()
    if 0 <= alpha <= 1:
        return lambda x: np.maximum(x, np.multiply(x, alpha))
    return lambda x: np.where(x >= 0, x, x * alpha)


def clip(attrs: Attributes, consts: list) -> Kernel:
    """Clip with min/max as inputs (opset 11+); an omitted one is no bound."""
    attrs.check_all_read()

    def run(x, lo=None, hi=None):
        y = x if lo is None else np.maximum(x, lo)
        return y if hi is None else np.minimum(y, hi)

    return run


STANDARD, QONNX = "", "qonnx"
_DOMAINS = {"": STANDARD, "ai.onnx": STANDARD, "qonnx.custom_op.general": QONNX, "finn.custom_op.general": QONNX}

# (domain, op type) -> kernel builder
OPS: dict[tuple[str, str], Callable[[Attributes, list], Kernel]] = {
    (QONNX, "Quant"): quant,
    (STANDARD, "Conv"): conv,
    (STANDARD, "ConvTranspose"): conv_transpose,
    (STANDARD, "Resize"): resize,
    (STANDARD, "LeakyRelu"): leaky_relu,
    (STANDARD, "Add"): _elementwise(np.add),
    (STANDARD, "Mul"): _elementwise(np.multiply),
    (STANDARD, "Div"): _elementwise(np.divide),
    (STANDARD, "Round"): _elementwise(np.round),  # half to even, as ONNX
    (STANDARD, "Clip"): clip,
}


@dataclass(frozen=True)
class Step:
    node: Node
    kernel: Kernel
    release: tuple[str, ...]  # tensors no later step needs: dropped after this one


class NumpyGraph:
    """A graph compiled for the numpy engine: constants folded, one kernel per remaining node.

    ``graph(feeds)`` takes {input name: float32 array (any batch)} and returns every graph
    output. ``trace``, when a list, receives (node, op type, input shapes, output shape) per step.
    """

    def __init__(self, graph: Graph, where: str = "graph") -> None:
        self.where = where
        self.inputs = graph.inputs
        self.input_shapes = dict(graph.input_shapes)
        self.outputs = graph.outputs
        values: dict[str, np.ndarray] = {k: (v.astype(F32) if v.dtype == np.float64 else v) for k, v in graph.initializers.items()}
        pending: list[tuple[Node, Kernel]] = []
        available = set(values) | set(self.inputs)
        for node in graph.nodes:
            unknown = [name for name in node.inputs if name and name not in available]
            if unknown:
                raise SnapsealError(f"{where}: node {node.name or node.outputs[0]!r} reads {unknown[0]!r} before any "
                                    "node computes it (the graph is not sorted)")
            available.update(node.outputs)
            domain = _DOMAINS.get(node.domain)
            build = OPS.get((domain, node.op_type)) if domain is not None else None
            if build is None:
                label = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
                raise SnapsealError(f"{where}: node {node.name or node.outputs[0]!r}: op {label} is not supported by "
                                    f"the numpy engine (supported: {', '.join(sorted(op for _, op in OPS))})")
            if len(node.outputs) != 1:
                raise Attributes(node, where).refuse(f"{len(node.outputs)} outputs")
            consts = [values.get(name) if name else None for name in node.inputs]
            kernel = build(Attributes(node, where), consts)
            if all(c is not None for c, name in zip(consts, node.inputs) if name):  # constant: fold once
                values[node.outputs[0]] = np.asarray(kernel(*consts), dtype=F32)
            else:
                pending.append((node, kernel))
        needed = {name for node, _ in pending for name in node.inputs if name} | set(self.outputs)
        self.constants = {k: v for k, v in values.items() if k in needed}
        last_use: dict[str, int] = {}
        for index, (node, _) in enumerate(pending):
            for name in node.inputs:
                if name and name not in self.constants:
                    last_use[name] = index
        self.steps = tuple(
            Step(node, kernel, tuple(n for n, i in last_use.items() if i == index and n not in self.outputs))
            for index, (node, kernel) in enumerate(pending)
        )
        missing = [name for name in self.outputs if name not in available]
        if missing:
            raise SnapsealError(f"{where}: graph output {missing[0]!r} is never computed")

    @classmethod
    def load(cls, path: Path) -> "NumpyGraph":
        return cls(read_onnx(path), where=str(path))

    def __call__(self, feeds: dict[str, np.ndarray], trace: Optional[list] = None) -> dict[str, np.ndarray]:
        env = dict(self.constants)
        for name in self.inputs:
            if name not in feeds:
                raise SnapsealError(f"{self.where}: input {name!r} not given")
            env[name] = np.asarray(feeds[name], dtype=F32)
        for step in self.steps:
            args = [env[name] if name else None for name in step.node.inputs]
            try:
                out = step.kernel(*args)
            except ValueError as exc:  # shapes that do not broadcast, a reshape that does not fit
                raise SnapsealError(f"{self.where}: node {step.node.name or step.node.outputs[0]!r} "
                                    f"({step.node.op_type}): {str(exc).splitlines()[0]}") from None
            if out.dtype != F32:
                out = out.astype(F32)
            env[step.node.outputs[0]] = out
            if trace is not None:
                trace.append((step.node.name, step.node.op_type, [a.shape if a is not None else None for a in args], out.shape))
            for name in step.release:
                del env[name]
        return {name: env[name] for name in self.outputs}
