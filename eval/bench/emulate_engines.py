"""Emulation engines side by side: crops/s of ``ort`` and ``numpy`` (and ``qonnx`` if asked).

    OPENBLAS_NUM_THREADS=1 python -m snapseal.eval.bench.emulate_engines [--crops 256] [--repeats 5]

For each graph of the bundle (encoder, decoder, forward_at_mean) and each engine of the
emulate backend (``daemon/accel/emulate.py``): the best of ``--repeats`` timed runs over
``--crops`` crops (the bundle's golden crops, repeated) in batches of ``--batch``, as crops/s
(wall clock and this process's CPU time), whether every output is bit for bit the first
engine's, and the graph's multiply-accumulates per crop (Conv: output elements x input
channels x kernel taps; ConvTranspose: input elements x output channels x kernel taps; counted
from the shapes the numpy engine sees at batch 1). Set OPENBLAS_NUM_THREADS=1 before Python
starts for a single-thread comparison (onnxruntime runs with one intra-op thread here). The
machine's load changes the numbers: compare the engines of one run. Nothing is asserted.

    python -m snapseal.eval.bench.emulate_engines --board pynq-z2 [--blas-dir DIR] [--crops 16]

counts instead the guest instructions per crop of every engine that imports in the board's
guest (``make board-sim BOARD=...`` builds it: eval/board/harness.py), under qemu-user with
the harness's instruction-counting plugin, for this checkout's daemon. ``--blas-dir`` puts a
directory first on the guest's library path, e.g. Debian's armhf OpenBLAS (the sysroot's numpy
otherwise loads the reference BLAS). Instructions under qemu are exact; time there is not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from snapseal.daemon.errors import SnapsealError

GRAPHS = ("encoder", "decoder", "forward_at_mean")


def macs_per_crop(path: Path) -> dict[str, int]:
    """Multiply-accumulates of one crop through a graph, by op type (Conv, ConvTranspose)."""
    from snapseal.daemon.accel.numpy_graph import NumpyGraph

    graph = NumpyGraph.load(path)
    feeds = {name: np.zeros([1] + [int(d) for d in graph.input_shapes[name][1:]], np.float32) for name in graph.inputs}
    trace: list = []
    graph(feeds, trace=trace)
    totals: dict[str, int] = {}
    for _, op, inputs, output in trace:
        if op == "Conv":  # weights M x C x kh x kw
            macs = int(np.prod(output)) * int(np.prod(inputs[1][1:]))
        elif op == "ConvTranspose":  # weights C x M x kh x kw
            macs = int(np.prod(inputs[0])) * int(np.prod(inputs[1][1:]))
        else:
            continue
        totals[op] = totals.get(op, 0) + macs
    return totals


def _inputs(bundle, graph: str, crops: np.ndarray) -> np.ndarray:
    if graph == "decoder":
        rng = np.random.default_rng(0)
        return (rng.standard_normal((len(crops), bundle.latent_dim)) * 2).astype(np.float32)[:, :, None, None]
    return crops.astype(np.float32)[:, None]


def time_engine(bundle, engine: str, graph: str, x: np.ndarray, batch: int, repeats: int):
    from snapseal.daemon.accel.emulate import EmulateAccelerator

    accel = EmulateAccelerator(bundle, engine=engine, batch_size=batch)
    accel._run(graph, x[:batch])  # load the graph, warm up
    best_wall = best_cpu = float("inf")
    out = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = accel._run(graph, x)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return len(x) / best_wall, len(x) / best_cpu, out


def _same_bits(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(
        a[k].shape == b[k].shape and np.array_equal(a[k].view(np.uint32), b[k].view(np.uint32)) for k in a)


GUEST_BUCKET = 20  # the plugin's bucket for (engine e, graph g): 20 + 10 * e + g


def _mark(bucket: int) -> None:
    """The harness's stage marker (eval/board/marks.py): a failing lseek the plugin sees."""
    try:
        os.lseek(-7777, bucket, os.SEEK_SET)
    except OSError:
        pass


def guest_run(engines: list[str], graphs: list[str], n: int, batch: int) -> dict:
    """In the guest: each engine that loads, each graph, n crops, the timed run in its bucket."""
    from snapseal.daemon.accel.emulate import EmulateAccelerator
    from snapseal.daemon.bundle import load_bundle

    bundle = load_bundle()
    crops = np.resize(np.load(bundle.golden_dir / "crops.npy"), (n, 64, 64))
    buckets = {}
    for e, engine in enumerate(engines):
        for g, graph in enumerate(graphs):
            x = _inputs(bundle, graph, crops)
            try:
                accel = EmulateAccelerator(bundle, engine=engine, batch_size=batch)
                accel._run(graph, x[:batch])  # load, warm up: outside the bucket
            except (SnapsealError, ImportError) as exc:
                print(f"guest: engine {engine} not available ({str(exc).splitlines()[0]})", file=sys.stderr)
                break
            bucket = GUEST_BUCKET + 10 * e + g
            _mark(bucket)
            accel._run(graph, x)
            _mark(0)
            buckets[str(bucket)] = {"engine": engine, "graph": graph}
    return {"crops": n, "batch": batch, "numpy": np.__version__, "buckets": buckets}


def board_run(board_name: str, engines: list[str], graphs: list[str], n: int, batch: int, blas_dir: Path | None) -> dict:
    """On the host: run guest_run under the board's qemu with the counting plugin."""
    import subprocess
    import tempfile

    from snapseal.eval.board import harness

    if board_name not in harness.BOARDS:
        raise SnapsealError(f"--board: unknown board {board_name!r}; known: {', '.join(harness.BOARDS)}")
    board = harness.BOARDS[board_name]
    p = harness.paths(board)
    if not p["venv_python"].exists() or not p["plugin"].exists():
        raise SnapsealError(f"{p['venv_python']}: no board guest yet (make board-sim BOARD={board_name})")
    repo = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "snapseal"  # this checkout as the package `snapseal` (the guest's wheel may be older)
        tree.mkdir()
        (tree / "__init__.py").write_text((repo / "snapseal" / "__init__.py").read_text())
        for folder in ("daemon", "bundles", "eval"):
            (tree / folder).symlink_to(repo / folder)
        counts = Path(tmp) / "counts.json"
        env = harness.guest_env([Path(tmp)])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if blas_dir is not None:
            env["LD_LIBRARY_PATH"] = str(blas_dir)
        command = [*harness.emulator(board, counts), str(p["venv_python"]), "-m", "snapseal.eval.bench.emulate_engines",
                   "--guest", "--engines", ",".join(engines), "--graphs", ",".join(graphs),
                   "--crops", str(n), "--batch", str(batch)]
        done = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0 or not counts.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SnapsealError(f"the {board_name} guest run failed ({last})")
        notes = [line for line in done.stderr.splitlines() if line.startswith("guest: ")]
        layout = json.loads(done.stdout.strip().splitlines()[-1])
        buckets = json.loads(counts.read_text())["buckets"]
    result = {"board": board_name, "cpu": board.cpu, "blas_dir": str(blas_dir) if blas_dir else None, **layout,
              "notes": notes, "instructions_per_crop": {}}
    for bucket, what in layout["buckets"].items():
        per_crop = buckets.get(bucket, 0) / n
        result["instructions_per_crop"].setdefault(what["graph"], {})[what["engine"]] = round(per_crop)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m snapseal.eval.bench.emulate_engines", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the committed one)")
    p.add_argument("--engines", default="ort,numpy", help="comma-separated: ort, numpy, qonnx (qonnx is slow)")
    p.add_argument("--graphs", default=",".join(GRAPHS))
    p.add_argument("--crops", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--board", default=None, help="count instructions in this board's ARM guest instead (pynq-z2, ultra96-v2)")
    p.add_argument("--blas-dir", type=Path, default=None, help="with --board: a BLAS to load first in the guest")
    p.add_argument("--guest", action="store_true", help=argparse.SUPPRESS)  # the run inside the guest
    args = p.parse_args(argv)
    try:
        from snapseal.daemon.bundle import load_bundle

        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        graphs = [g.strip() for g in args.graphs.split(",") if g.strip()]
        unknown = [g for g in graphs if g not in GRAPHS]
        if unknown:
            raise SnapsealError(f"--graphs: unknown graph {unknown[0]!r}; known: {', '.join(GRAPHS)}")
        if args.crops < 1 or args.batch < 1 or args.repeats < 1:
            raise SnapsealError("--crops, --batch and --repeats must be at least 1")
        if args.guest:
            print(json.dumps(guest_run(engines, graphs, args.crops, args.batch)))
            return 0
        if args.board is not None:
            report = board_run(args.board, engines, graphs, args.crops, args.batch, args.blas_dir)
            print(f"{args.board} ({report['cpu']}, qemu-user), numpy {report['numpy']}, {args.crops} crops, batch {args.batch}, "
                  f"BLAS: {report['blas_dir'] or 'what the guest numpy loads'}")
            print(f"{'graph':16s} " + "  ".join(f"{e + ' M instr/crop':>20s}" for e in engines))
            for graph, per_engine in report["instructions_per_crop"].items():
                print(f"{graph:16s} " + "  ".join(f"{per_engine[e] / 1e6:20.1f}" if e in per_engine else f"{'-':>20s}"
                                                  for e in engines))
            for note in report["notes"]:
                print(note)
            if args.json is not None:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=2) + "\n")
            return 0
        bundle = load_bundle(args.bundle)
        golden = np.load(bundle.golden_dir / "crops.npy") if bundle.golden_dir else \
            np.random.default_rng(0).integers(0, 256, (100, 64, 64)).astype(np.uint8)
        crops = np.resize(golden, (args.crops, 64, 64))
        print(f"bundle {bundle.model_id}, {args.crops} crops, batch {args.batch}, best of {args.repeats}, "
              f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, numpy {np.__version__}")
        print(f"{'graph':16s} {'MMAC/crop':>9s}  " + "  ".join(f"{e + ' crops/s (wall, cpu)':>28s}" for e in engines)
              + "  bit-exact")
        report: dict = {"crops": args.crops, "batch": args.batch, "repeats": args.repeats, "numpy": np.__version__,
                        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "graphs": {}}
        for graph in graphs:
            macs = macs_per_crop(bundle.graphs[graph])
            x = _inputs(bundle, graph, crops)
            cells, first, exact = [], None, True
            entry: dict = {"macs_per_crop": macs, "engines": {}}
            for engine in engines:
                wall, cpu, out = time_engine(bundle, engine, graph, x, args.batch, args.repeats)
                entry["engines"][engine] = {"crops_per_s_wall": round(wall, 1), "crops_per_s_cpu": round(cpu, 1)}
                cells.append(f"{wall:13.1f} {cpu:14.1f}")
                if first is None:
                    first = out
                else:
                    exact = exact and _same_bits(out, first)
            entry["bit_exact"] = exact
            report["graphs"][graph] = entry
            print(f"{graph:16s} {sum(macs.values()) / 1e6:9.2f}  " + "  ".join(f"{c:>28s}" for c in cells)
                  + f"  {'yes' if exact else 'NO'}")
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    except SnapsealError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
