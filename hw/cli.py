"""``python -m snapseal.hw.cli estimate|bitstream --board B``: what ``make estimate`` and
``make bitstream`` run. Errors are one line (``snapseal: error: ...``), exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from snapseal.daemon.errors import SnapsealError


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_estimate(args) -> int:
    from snapseal.hw.boards import get_board
    from snapseal.hw.flow import estimate

    board = get_board(args.board)
    model = _model_path(args)
    summary = estimate(model, board, args.out / board.name, progress=_log)
    keys = ("board", "part", "clock_mhz", "totals", "budget", "utilization", "crops_per_s", "meets")
    print(json.dumps({k: summary[k] for k in keys}, indent=1))
    print(f"wrote {args.out / board.name / 'estimate.json'} and estimate.md", file=sys.stderr)
    return 0 if all(summary["meets"].values()) else 1


def _model_path(args) -> Path:
    if args.model is not None:
        if not args.model.is_file():
            raise SnapsealError(f"{args.model}: QONNX model not found")
        return args.model
    from snapseal.daemon.bundle import load_bundle

    return load_bundle(args.bundle).graphs["forward_at_mean"]


def cmd_bitstream(args) -> int:
    from snapseal.hw.boards import get_board
    from snapseal.hw.flow import missing_hardware_tools

    board = get_board(args.board)
    missing = missing_hardware_tools()
    if missing:
        raise SnapsealError(
            f"bitstream for {board.name} needs Vivado + Vitis HLS: {'; '.join(missing)} "
            "(source <Vivado>/settings64.sh; `make estimate` works without them)"
        )
    from snapseal.hw.bitstream import build_bitstream_bundle

    out = build_bitstream_bundle(args.bundle, board, args.out / board.name, progress=_log)
    print(f"bundle with bitstream: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.hw.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("estimate", cmd_estimate), ("bitstream", cmd_bitstream)):
        p = sub.add_parser(name)
        p.add_argument("--board", required=True)
        p.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the committed default)")
        p.add_argument("--model", type=Path, default=None, help="a QONNX graph instead of the bundle's forward_at_mean")
        p.add_argument("--out", type=Path, default=Path("build/hw"))
        p.set_defaults(func=func)
    from snapseal.cli import run_command

    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
