"""The host tails: the output scaling the FPGA build leaves to the ARM host, in one place.

The FINN build (hw/transforms/host_tail.py) cuts each graph output's float tail — layout and
affine nodes after the last integer tensor — off the accelerator and records it as a list of
ops in the bundle (``hardware.driver.output_tails``)::

    {"output_name", "integer_name", "integer_shape", "integer_dtype", "output_shape",
     "ops": [{"op": "mul"|"add", "value": [...], "shape": [...]} | {"op": "transpose", "perm": [...]}
             | {"op": "reshape", "shape": [...]}, ...]}

``apply_tail`` runs a tail forward (integers the hardware streams -> the graph's float output),
with the same op order and float32 rounding as the ONNX nodes it replaced. ``integers_of`` runs
it backwards (a float output of the emulated graph -> the integers the hardware would stream),
refusing values that are not integer multiples of their scale. Every user — the FPGA backend,
the self-test, the bit-exact verification and the build — calls these two.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snapseal.daemon.errors import SnapsealError

HOST_OPS = ("mul", "add", "transpose", "reshape")
# Power-of-two scales (the VAE's) give exact quotients; other scales leave float rounding far
# below the 0.5 that would make the integer ambiguous.
INTEGER_TOLERANCE = 1e-3


class HostTailError(SnapsealError):
    """A tail names an op the host does not know, or an output is not integral."""


def _check_op(tail: dict[str, Any], op: dict[str, Any]) -> str:
    kind = op.get("op")
    if kind not in HOST_OPS:
        raise HostTailError(f"host tail of {tail.get('output_name', '?')}: unknown op {kind!r} "
                            f"(known: {', '.join(HOST_OPS)})")
    return kind


def apply_tail(tail: dict[str, Any], integers: np.ndarray) -> np.ndarray:
    """Integers the hardware streams -> the graph's float32 output."""
    values = np.asarray(integers, dtype=np.float32)
    for op in tail["ops"]:
        kind = _check_op(tail, op)
        if kind in ("mul", "add"):
            const = np.asarray(op["value"], dtype=np.float32).reshape(op["shape"])
            values = (values * const if kind == "mul" else values + const).astype(np.float32)
        elif kind == "transpose":
            values = np.transpose(values, op["perm"])
        else:
            values = values.reshape([values.shape[0], *op["shape"][1:]])
    return values


def integers_of(tail: dict[str, Any], values: np.ndarray, tolerance: float = INTEGER_TOLERANCE) -> np.ndarray:
    """A float output -> the int64 integers the hardware streams (the tail undone, in reverse)."""
    x = np.asarray(values, dtype=np.float64)
    # The shape each op saw on the way forward, so a reshape is undone to the right shape.
    shape = [x.shape[0], *tail["integer_shape"][1:]]
    shapes_before = []
    for op in tail["ops"]:
        kind = _check_op(tail, op)
        shapes_before.append(list(shape))
        if kind == "transpose":
            shape = [shape[axis] for axis in op["perm"]]
        elif kind == "reshape":
            shape = [shape[0], *op["shape"][1:]]
    for op, before in zip(reversed(tail["ops"]), reversed(shapes_before)):
        kind = op["op"]
        if kind == "mul":
            x = x / np.asarray(op["value"], np.float64).reshape(op["shape"])
        elif kind == "add":
            x = x - np.asarray(op["value"], np.float64).reshape(op["shape"])
        elif kind == "transpose":
            x = np.transpose(x, np.argsort(op["perm"]))
        else:
            x = x.reshape(before)
    rounded = np.round(x)
    worst = float(np.max(np.abs(x - rounded))) if x.size else 0.0
    if not np.isfinite(worst) or worst > tolerance:
        raise HostTailError(f"{tail.get('output_name', '?')}: output is not an integer multiple of its scale "
                            f"(off by {worst:g})")
    return rounded.astype(np.int64)
