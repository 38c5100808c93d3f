"""The one host-tail module (daemon/accel/host_tail.py): forward and backward agree, and every
user gets the same refusals (unknown op, non-integral output)."""

from __future__ import annotations

import numpy as np
import pytest

from snapseal.daemon.accel.host_tail import HostTailError, apply_tail, integers_of

TAIL = {
    "output_name": "mu_z", "integer_name": "acc", "integer_shape": [1, 2, 3], "integer_dtype": "INT11",
    "output_shape": [1, 6],
    "ops": [{"op": "mul", "value": [0.125, 0.25, 0.5], "shape": [1, 1, 3]},
            {"op": "add", "value": [1.0], "shape": [1]},
            {"op": "transpose", "perm": [0, 2, 1]},
            {"op": "reshape", "shape": [1, 6]}],
}


def test_integers_round_trip_through_the_tail():
    rng = np.random.default_rng(0)
    ints = rng.integers(-1024, 1024, size=(5, 2, 3))
    floats = apply_tail(TAIL, ints)
    assert floats.dtype == np.float32 and floats.shape == (5, 6)
    assert np.array_equal(integers_of(TAIL, floats), ints)


def test_forward_matches_the_onnx_order_of_float32_ops():
    ints = np.array([[[3, -7, 11], [0, 1, -1]]])
    scale = np.array([0.125, 0.25, 0.5], np.float32).reshape(1, 1, 3)
    want = np.transpose((ints.astype(np.float32) * scale).astype(np.float32) + np.float32(1.0), (0, 2, 1)).reshape(1, 6)
    assert np.array_equal(apply_tail(TAIL, ints), want)


def test_a_value_off_its_scale_grid_is_refused():
    floats = apply_tail(TAIL, np.zeros((1, 2, 3), np.int64))
    floats[0, 0] += 0.01  # not a multiple of 1/8
    with pytest.raises(HostTailError, match="not an integer multiple"):
        integers_of(TAIL, floats)


def test_non_finite_output_is_refused():
    floats = apply_tail(TAIL, np.zeros((1, 2, 3), np.int64))
    floats[0, 3] = np.nan
    with pytest.raises(HostTailError):
        integers_of(TAIL, floats)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_an_unknown_op_is_an_error_both_ways(direction):
    tail = {**TAIL, "ops": [*TAIL["ops"], {"op": "sigmoid"}]}
    with pytest.raises(HostTailError, match="unknown op 'sigmoid'"):
        if direction == "forward":
            apply_tail(tail, np.zeros((1, 2, 3), np.int64))
        else:
            integers_of(tail, np.zeros((1, 6), np.float32))
