"""``snapseal selftest``: the golden crops through an accelerator backend, integers compared.

The golden vectors (``tests/golden/``: crops.npy, expected_<output>.npy, golden.json,
driver_settings.json) are written by ``make golden`` after the verification chain
(Brevitas -> QONNX -> FINN -> hardware layers -> emulation) found every stage identical. On a
board, ``snapseal selftest --backend fpga`` proves the bitstream computes the same integers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from snapseal.daemon.errors import SnapsealError

DEFAULT_GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "golden"


def register(subparsers) -> None:
    parser = subparsers.add_parser("selftest", help="check an accelerator bit-exactly on the golden crops")
    parser.add_argument("--backend", default="emulate", choices=("emulate", "fpga"))
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the committed default)")
    parser.add_argument("--golden", type=Path, default=DEFAULT_GOLDEN, help="golden vector directory")
    parser.add_argument("--limit", type=int, default=None, help="only the first N crops")
    parser.set_defaults(func=run)


def load_golden(golden_dir: Path) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    meta_path = golden_dir / "golden.json"
    if not meta_path.is_file():
        raise SnapsealError(f"{meta_path}: golden vectors not found (make golden)")
    try:
        meta = json.loads(meta_path.read_text())
        crops = np.load(golden_dir / "crops.npy", allow_pickle=False)
        expected = {name: np.load(golden_dir / file, allow_pickle=False) for name, file in meta["expected"].items()}
    except (OSError, ValueError, KeyError) as exc:
        raise SnapsealError(f"{golden_dir}: unreadable golden vectors ({exc})") from None
    return meta, crops, expected


def integers_from_raw(tail: dict, values: np.ndarray) -> np.ndarray:
    """A graph's float output -> the integers the accelerator streams (undo the host tail)."""
    x = np.asarray(values, np.float64)
    for op in reversed(tail["ops"]):
        if op["op"] == "mul":
            x = x / np.asarray(op["value"], np.float64).reshape(op["shape"])
        elif op["op"] == "add":
            x = x - np.asarray(op["value"], np.float64).reshape(op["shape"])
        elif op["op"] == "transpose":
            x = np.transpose(x, np.argsort(op["perm"]))
        elif op["op"] == "reshape":
            x = x.reshape([x.shape[0], *tail["integer_shape"][1:]])
    return np.round(x).astype(np.int64)


def run(args: argparse.Namespace) -> int:
    from snapseal.daemon.accel import make_accelerator
    from snapseal.daemon.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    meta, crops, expected = load_golden(args.golden)
    if meta["model_id"] != bundle.model_id:
        raise SnapsealError(f"{args.golden / 'golden.json'}: golden vectors are for model {meta['model_id']}, "
                            f"the bundle holds {bundle.model_id} (make golden)")
    if args.limit:
        crops = crops[: args.limit]
    accel = make_accelerator(args.backend, bundle)
    tails = meta["output_tails"]
    if hasattr(accel, "run_forward_at_mean_integers"):
        streams = dict(zip([t["output_name"] for t in accel.settings.tails], accel.run_forward_at_mean_integers(crops)))
    else:
        raw = accel.run_forward_at_mean_raw(crops)
        streams = {t["output_name"]: integers_from_raw(t, raw[t["output_name"]]) for t in tails}
    failures = []
    for tail in tails:
        name = tail["output_name"]
        want = expected[name][: len(crops)].astype(np.int64)
        got = np.asarray(streams[name]).reshape(want.shape)
        differing = int(np.count_nonzero(got != want))
        print(f"{name}: {want.size} integers, {differing} differ")
        if differing:
            failures.append(name)
    verdict = "FAIL" if failures else "PASS"
    print(f"selftest {verdict}: backend {args.backend}, {len(crops)} golden crops, model {bundle.model_id}")
    return 1 if failures else 0
