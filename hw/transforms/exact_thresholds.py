"""Recompute every MultiThreshold as the exact integer thresholds of the quantizer it replaces.

Why: FINN streamlining turns ``Quant(leaky(acc * unit * a + b))`` into thresholds on the
integer accumulator ``acc`` by moving the float scales and biases into the thresholds,
``T' = (T - b) / a`` and so on, each step rounded in float32. Two things then differ from what
Brevitas (and the QONNX graph) computes:

* ties: FINN places thresholds at the half steps and counts ``acc >= T``, i.e. rounds half
  UP; Brevitas/QONNX ``ROUND`` is round-half-to-EVEN (``torch.round`` / ``np.round``). Ties are
  common where a quantizer re-quantizes a finer power-of-two grid (the decoder's input
  quantizer on mu_z: 1/16 -> 1/2) and in layers whose accumulator grid is finer than the
  output step;
* float rounding: an accumulator within float32 rounding of a level lands on the other side.

The fix does not try to push the algebra through exactly. For each activation quantizer of the
reference QONNX graph it evaluates the quantized function of the integer accumulator exactly
as the reference computes it (float32, op by op, with the reference's rounding mode) and finds,
per channel and level, the smallest integer accumulator reaching that level (binary search; the
function is monotonic). That table is bit-exact by construction for every integer input.

Which reference quantizer a FINN MultiThreshold came from is decided by agreement: FINN's own
(approximate) thresholds must lie within ``MATCH_TOLERANCE`` of exactly one candidate's table
(in one orientation: FINN negates an accumulator whose batch-norm scale is negative). Two
different matches, or no match while every reference quantizer could be modelled, raise naming
the node: nothing is guessed. Quantizers this module cannot model (an ONNX BatchNormalization
before them, a non-power-of-two scale product) are listed in ``skipped``; a MultiThreshold that
may come from one of them keeps FINN's thresholds and is listed in ``kept``.

Exactness of "accumulator x unit" needs the conv's products and sums exact in float32: the
input and weight scales are powers of two (quantize/model.py) and |acc| < 2^24.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

LINEAR_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
ELEMENTWISE_OPS = ("Mul", "Add", "Sub", "Div", "LeakyRelu", "Relu")
EXACT_ACC_LIMIT = 2**24  # float32 holds every integer below this exactly
MATCH_TOLERANCE = 2.0  # FINN's float thresholds vs the exact integers, in accumulator units


class ExactThresholdError(ValueError):
    """A MultiThreshold whose reference quantizer cannot be identified (names the node)."""


@dataclass
class ReferenceQuantizer:
    """One activation quantizer of the reference graph as a function of an integer input."""

    name: str  # the Quant node
    channels: int  # 1 = the same function for every channel
    unit: np.ndarray  # (channels,) float32: value of one accumulator step at the linear op's output
    bias: np.ndarray | None  # (channels,) float32 added after the linear op (Conv bias), or None
    elementwise: list[tuple[str, np.ndarray]]  # (op, (channels,) float32 constant or alpha)
    scale: np.ndarray  # (channels,) float32 quantizer scale
    zero_point: np.ndarray  # (channels,) float32
    bits: int
    signed: bool
    narrow: bool
    rounding_mode: str

    @property
    def out_min(self) -> int:
        return int(min_int(self.signed, self.narrow, self.bits))

    @property
    def out_max(self) -> int:
        return int(max_int(self.signed, self.narrow, self.bits))

    def integer_output(self, acc: np.ndarray) -> np.ndarray:
        """acc: (channels, M) integers -> the quantizer's integer outputs, computed like qonnx
        executes the reference graph (float32, op by op)."""
        column = (slice(None), None)
        x = np.asarray(acc, dtype=np.float32) * self.unit[column]
        if self.bias is not None:
            x = (x + self.bias[column]).astype(np.float32)
        for op, const in self.elementwise:
            c = const[column]
            if op == "Mul":
                x = (x * c).astype(np.float32)
            elif op == "Add":
                x = (x + c).astype(np.float32)
            elif op == "Sub":
                x = (x - c).astype(np.float32)
            elif op == "Div":
                x = (x / c).astype(np.float32)
            elif op == "LeakyRelu":
                x = np.where(x < 0, x * c, x).astype(np.float32)
            elif op == "Relu":
                x = np.maximum(x, np.float32(0))
        # qonnx int_quant: scale, shift, clamp, round (same order)
        y = (x / self.scale[column]).astype(np.float32)
        y = (y + self.zero_point[column]).astype(np.float32)
        y = np.clip(y, self.out_min, self.out_max)
        return resolve_rounding_mode(self.rounding_mode)(y).astype(np.int64)

    def exact_thresholds(self, orientation: int = 1, low: int = -EXACT_ACC_LIMIT, high: int = EXACT_ACC_LIMIT) -> np.ndarray:
        """(channels, levels-1) int64: smallest integer v in [low, high] with
        out(orientation * v) >= out_min + j + 1; high + 1 when never reached."""
        levels = self.out_max - self.out_min
        targets = self.out_min + np.arange(1, levels + 1, dtype=np.int64)[None, :]
        lo = np.full((self.channels, levels), low, dtype=np.int64)
        hi = np.full((self.channels, levels), high + 1, dtype=np.int64)
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            reached = self.integer_output(orientation * np.minimum(mid, high)) >= targets
            reached &= mid <= high
            hi = np.where(reached, mid, hi)
            lo = np.where(reached, lo, mid + 1)
        return lo


# --------------------------------------------------------------------------- reference side
def _channel_vector(value: np.ndarray, channels: int, axis_len_hint: int | None = None) -> np.ndarray:
    flat = np.asarray(value, dtype=np.float32).ravel()
    if flat.size == 1:
        return np.full(channels, flat[0], dtype=np.float32)
    if flat.size != channels:
        raise ExactThresholdError(f"constant with {flat.size} values for {channels} channels")
    return flat


def _quant_params(model: ModelWrapper, node):
    scale = model.get_initializer(node.input[1])
    zero_point = model.get_initializer(node.input[2])
    bits = model.get_initializer(node.input[3])
    if scale is None or zero_point is None or bits is None:
        return None
    attrs = {a.name: a for a in node.attribute}
    signed = bool(attrs["signed"].i) if "signed" in attrs else True
    narrow = bool(attrs["narrow"].i) if "narrow" in attrs else False
    mode = attrs["rounding_mode"].s.decode() if "rounding_mode" in attrs else "ROUND"
    return np.asarray(scale, np.float32), np.asarray(zero_point, np.float32), int(bits), signed, narrow, mode


def _weight_scale(model: ModelWrapper, linear) -> np.ndarray | None:
    """Per-output-channel weight scale of a linear op whose weight is a Quant of an initializer."""
    weight_producer = model.find_producer(linear.input[1])
    if weight_producer is None or weight_producer.op_type != "Quant":
        return None
    params = _quant_params(model, weight_producer)
    if params is None:
        return None
    scale = params[0]
    if scale.size == 1:
        return scale.reshape(1)
    # the channel axis is the one axis of the scale longer than 1 (Conv: 0, ConvTranspose: 1, MatMul: 1)
    return scale.ravel()


def _input_unit(model: ModelWrapper, tensor: str) -> float | None:
    """Value of one integer step of an activation tensor (a Quant output or the raw input)."""
    producer = model.find_producer(tensor)
    if producer is None:
        return 1.0 if tensor in {i.name for i in model.graph.input} else None
    if producer.op_type != "Quant" or model.get_initializer(producer.input[0]) is not None:
        return None
    params = _quant_params(model, producer)
    if params is None or params[0].size != 1 or np.any(params[1] != 0):
        return None
    return float(params[0].ravel()[0])


def reference_quantizers(model: ModelWrapper) -> tuple[list[ReferenceQuantizer], dict[str, str]]:
    """Every activation Quant of a QONNX graph as an integer function; skipped ones with why."""
    found: list[ReferenceQuantizer] = []
    skipped: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type != "Quant" or model.get_initializer(node.input[0]) is not None:
            continue
        params = _quant_params(model, node)
        if params is None:
            skipped[node.name] = "non-constant quantizer parameters"
            continue
        scale, zero_point, bits, signed, narrow, mode = params
        elementwise_nodes = []
        tensor = node.input[0]
        producer = model.find_producer(tensor)
        while producer is not None and producer.op_type in ELEMENTWISE_OPS:
            elementwise_nodes.insert(0, producer)
            tensor = producer.input[0]
            producer = model.find_producer(tensor)
        bias = None
        if producer is not None and producer.op_type in LINEAR_OPS:
            in_unit = _input_unit(model, producer.input[0])
            weight_scale = _weight_scale(model, producer)
            if in_unit is None or weight_scale is None:
                skipped[node.name] = f"{producer.name}: input or weight is not a plain quantizer output"
                continue
            unit64 = np.float64(in_unit) * weight_scale.astype(np.float64)
            if len(producer.input) > 2:
                bias = model.get_initializer(producer.input[2])
                if bias is None:
                    skipped[node.name] = f"{producer.name}: non-constant bias"
                    continue
        elif producer is None or producer.op_type == "Quant":
            in_unit = _input_unit(model, tensor)
            if in_unit is None:
                skipped[node.name] = "input is not an integer-valued tensor"
                continue
            unit64 = np.array([in_unit], dtype=np.float64)
        else:
            skipped[node.name] = f"fed by {producer.op_type}"
            continue
        unit = unit64.astype(np.float32)
        if not np.array_equal(unit.astype(np.float64), unit64):
            skipped[node.name] = "input x weight scale not exact in float32"
            continue
        sizes = {unit.size, scale.size, zero_point.size} | ({np.asarray(bias).size} if bias is not None else set())
        elementwise: list[tuple[str, np.ndarray]] = []
        for element in elementwise_nodes:
            if element.op_type == "LeakyRelu":
                alpha = get_by_name(element.attribute, "alpha")
                elementwise.append(("LeakyRelu", np.array([alpha.f if alpha is not None else 0.01], np.float32)))
            elif element.op_type == "Relu":
                elementwise.append(("Relu", np.zeros(1, np.float32)))
            else:
                const = model.get_initializer(element.input[1])
                if const is None:
                    break
                elementwise.append((element.op_type, np.asarray(const, np.float32)))
            sizes.add(elementwise[-1][1].size)
        else:
            channels = max(sizes)
            if not sizes <= {1, channels}:
                skipped[node.name] = f"per-channel constants of different lengths {sorted(sizes)}"
                continue
            found.append(
                ReferenceQuantizer(
                    name=node.name,
                    channels=channels,
                    unit=_channel_vector(unit, channels),
                    bias=None if bias is None else _channel_vector(bias, channels),
                    elementwise=[(op, _channel_vector(c, channels)) for op, c in elementwise],
                    scale=_channel_vector(scale, channels),
                    zero_point=_channel_vector(zero_point, channels),
                    bits=bits,
                    signed=signed,
                    narrow=narrow,
                    rounding_mode=mode,
                )
            )
            continue
        skipped[node.name] = "non-constant elementwise operand"
    return found, skipped


# --------------------------------------------------------------------------- FINN side
@dataclass
class ThresholdFix:
    node: str
    reference: str
    orientation: int
    changed: int  # thresholds whose integer value changed (after FINN's own ceil)
    total: int
    max_shift: int


def _finn_thresholds_as_integers(thresholds: np.ndarray, dtype: DataType) -> np.ndarray:
    """What FINN's RoundAndClipThresholds makes of float thresholds on an integer input."""
    return np.clip(np.ceil(thresholds.astype(np.float64)), dtype.min(), dtype.max() + 1).astype(np.int64)


def _candidate_tables(reference: ReferenceQuantizer, low: int, high: int) -> dict[int, np.ndarray]:
    return {orientation: reference.exact_thresholds(orientation, low, high) for orientation in (1, -1)}


class MakeThresholdsExact(Transformation):
    """Replace the thresholds of every MultiThreshold on an integer input by the exact ones of
    its reference quantizer. ``fixes`` lists what changed (for the build log / tests)."""

    def __init__(self, reference: ModelWrapper) -> None:
        super().__init__()
        self.references, self.skipped = reference_quantizers(reference)
        self.fixes: list[ThresholdFix] = []
        self.kept: list[str] = []  # MultiThresholds left as FINN made them (no modelable reference)
        self._tables: dict[tuple[str, int, int], dict[int, np.ndarray]] = {}

    def _tables_for(self, reference: ReferenceQuantizer, low: int, high: int) -> dict[int, np.ndarray]:
        key = (reference.name, low, high)
        if key not in self._tables:
            self._tables[key] = _candidate_tables(reference, low, high)
        return self._tables[key]

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        self.fixes, self.kept = [], []
        for node in model.graph.node:
            if node.op_type != "MultiThreshold":
                continue
            in_dtype = model.get_tensor_datatype(node.input[0])
            thresholds = model.get_initializer(node.input[1])
            if thresholds is None or not in_dtype.is_integer():
                continue
            low = int(max(in_dtype.min(), -EXACT_ACC_LIMIT))
            high = int(min(in_dtype.max(), EXACT_ACC_LIMIT - 1))
            out_bias_attr = get_by_name(node.attribute, "out_bias")
            out_bias = int(round(out_bias_attr.f)) if out_bias_attr is not None else 0
            approx = _finn_thresholds_as_integers(thresholds, in_dtype)
            channels, levels = approx.shape
            matches: list[tuple[ReferenceQuantizer, int, np.ndarray]] = []
            for reference in self.references:
                if reference.out_max - reference.out_min != levels or reference.out_min != out_bias:
                    continue
                if reference.channels not in (1, channels) or (channels == 1 and reference.channels != 1):
                    continue
                for orientation, table in self._tables_for(reference, low, high).items():
                    table = np.broadcast_to(table, approx.shape)
                    exact = np.clip(table, in_dtype.min(), in_dtype.max() + 1)
                    if np.max(np.abs(exact - approx)) <= MATCH_TOLERANCE:
                        matches.append((reference, orientation, exact))
            if not matches and self.skipped:
                # Possibly one of the quantizers this module cannot model (e.g. an ONNX
                # BatchNormalization, whose float rounding is onnxruntime's): FINN's thresholds
                # stay, and the report says so. The verification chain is what checks them.
                self.kept.append(node.name)
                continue
            if not matches:
                raise ExactThresholdError(
                    f"{node.name}: no reference quantizer has thresholds within {MATCH_TOLERANCE:g} of "
                    f"FINN's ({channels} channels, {levels} levels); skipped references: {self.skipped}"
                )
            if any(not np.array_equal(m[2], matches[0][2]) for m in matches[1:]):
                names = ", ".join(f"{m[0].name}({m[1]:+d})" for m in matches)
                raise ExactThresholdError(f"{node.name}: several reference quantizers match with different thresholds: {names}")
            reference, orientation, exact = matches[0]
            differing = exact != approx
            self.fixes.append(
                ThresholdFix(
                    node=node.name,
                    reference=reference.name,
                    orientation=orientation,
                    changed=int(np.count_nonzero(differing)),
                    total=int(exact.size),
                    max_shift=int(np.max(np.abs(exact - approx))) if exact.size else 0,
                )
            )
            model.set_initializer(node.input[1], exact.astype(np.float32))
        return model, False
