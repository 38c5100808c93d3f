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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m snapseal.eval.bench.emulate_engines", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the committed one)")
    p.add_argument("--engines", default="ort,numpy", help="comma-separated: ort, numpy, qonnx (qonnx is slow)")
    p.add_argument("--graphs", default=",".join(GRAPHS))
    p.add_argument("--crops", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    try:
        from snapseal.daemon.bundle import load_bundle

        bundle = load_bundle(args.bundle)
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        graphs = [g.strip() for g in args.graphs.split(",") if g.strip()]
        unknown = [g for g in graphs if g not in GRAPHS]
        if unknown:
            raise SnapsealError(f"--graphs: unknown graph {unknown[0]!r}; known: {', '.join(GRAPHS)}")
        if args.crops < 1 or args.batch < 1 or args.repeats < 1:
            raise SnapsealError("--crops, --batch and --repeats must be at least 1")
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
