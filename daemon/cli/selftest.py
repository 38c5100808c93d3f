"""``snapseal selftest``: the golden crops through an accelerator backend, integers compared.

The golden vectors belong to the bundle (``<bundle>/golden/``: crops.npy,
expected_<output>.npy, golden.json, driver_settings.json; listed and hashed in its manifest, so
``load_bundle`` has verified them). ``make golden`` writes them after the verification chain
(Brevitas -> QONNX -> FINN -> hardware layers -> emulation) found every stage identical. On a
board, ``snapseal selftest --backend fpga`` (with the installed bundle) proves the bitstream
computes the same integers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from snapseal.daemon.accel.host_tail import integers_of
from snapseal.daemon.errors import SnapsealError


def register(subparsers) -> None:
    parser = subparsers.add_parser("selftest", help="check an accelerator bit-exactly on the golden crops")
    parser.add_argument("--backend", default="emulate", choices=("emulate", "fpga"))
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the one shipped with snapseal)")
    parser.add_argument("--golden", type=Path, default=None,
                        help="golden vector directory (default: the bundle's own, written by make golden)")
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


def row_digests(values: np.ndarray) -> list[str]:
    """sha256 of each crop's integers (C order, the stored dtype)."""
    import hashlib

    return [hashlib.sha256(np.ascontiguousarray(row).tobytes()).hexdigest() for row in values]


def compare_output(meta: dict, expected: np.ndarray, name: str, got: np.ndarray) -> tuple[int, int, int]:
    """(integers compared, integers differing, crops differing) for one output of ``len(got)``
    golden crops: whole rows where stored, per-crop sha256 digests for the rest."""
    got = np.asarray(got, np.int64)
    n = len(got)
    rows = min(n, len(expected))
    want = expected[:rows].astype(np.int64)
    got_rows = got[:rows].reshape(want.shape)
    differing_ints = int(np.count_nonzero(got_rows != want))
    crops_bad = set(np.nonzero((got_rows != want).reshape(rows, -1).any(axis=1))[0].tolist())
    digests = (meta.get("digests") or {}).get(name)
    if digests is not None and n > rows:
        info = np.iinfo(expected.dtype)
        rest = got[rows:].reshape(n - rows, *expected.shape[1:])
        in_range = (rest >= info.min).reshape(n - rows, -1).all(1) & (rest <= info.max).reshape(n - rows, -1).all(1)
        for offset, (row, ok) in enumerate(zip(rest, in_range)):
            if not ok or row_digests(row[None].astype(expected.dtype))[0] != digests[rows + offset]:
                crops_bad.add(rows + offset)
    elif n > rows:
        raise SnapsealError(f"golden vectors hold {rows} rows of {name}, {n} crops asked")
    return want.size, differing_ints, len(crops_bad)


def run(args: argparse.Namespace) -> int:
    from snapseal.daemon.accel import make_accelerator
    from snapseal.daemon.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    golden_dir = args.golden if args.golden is not None else bundle.golden_dir
    if golden_dir is None:
        raise SnapsealError(f"{bundle.path}: bundle has no golden vectors (make golden HW_BUNDLE={bundle.path})")
    meta, crops, expected = load_golden(golden_dir)
    if meta["model_id"] != bundle.model_id:
        raise SnapsealError(f"{golden_dir / 'golden.json'}: golden vectors are for model {meta['model_id']}, "
                            f"the bundle holds {bundle.model_id} (make golden)")
    if args.limit:
        crops = crops[: args.limit]
    accel = make_accelerator(args.backend, bundle)
    tails = meta["output_tails"]
    if hasattr(accel, "run_forward_at_mean_integers"):
        streams = dict(zip([t["output_name"] for t in accel.settings.tails], accel.run_forward_at_mean_integers(crops)))
    else:
        raw = accel.run_forward_at_mean_raw(crops)
        streams = {t["output_name"]: integers_of(t, raw[t["output_name"]]) for t in tails}
    failures = []
    for tail in tails:
        name = tail["output_name"]
        compared, differing, crops_differing = compare_output(meta, expected[name], name, streams[name])
        print(f"{name}: {crops_differing} of {len(crops)} crops differ ({differing} of {compared} stored integers differ)")
        if crops_differing:
            failures.append(name)
    verdict = "FAIL" if failures else "PASS"
    print(f"selftest {verdict}: backend {args.backend}, {len(crops)} golden crops, model {bundle.model_id}")
    return 1 if failures else 0
