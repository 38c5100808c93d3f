"""The ``emulate`` backend: runs the bundle's QONNX graphs without torch, bit-exact to Brevitas.

The graphs use power-of-two scales only, so every accumulator is an exact float32 and the
results do not depend on summation order: qonnx's node-by-node executor (``execute_onnx``,
the reference) and the same graph run whole by onnxruntime agree bit for bit with Brevitas.
Engines:

- ``qonnx``: ``qonnx.core.onnx_exec.execute_onnx`` on a batch-N copy of the graph (weights'
  Quant nodes folded to constants once at load: the same numbers, computed once).
- ``ort`` (default where onnxruntime and qonnx import): the same cleaned graph with every Quant node
  rewritten as standard ONNX ops (Div, Round, Clip, Mul: exactly qonnx's Quant maths) and run
  whole by onnxruntime with graph optimisations OFF (no fusions that could reorder float
  operations). ``tests/daemon/test_emulate*.py`` and ``tests/quantize/test_export*.py`` check
  it against the qonnx engine and Brevitas.
- ``numpy`` (default where onnxruntime or qonnx does not import, e.g. a PYNQ-Z2: PyPI has no
  armv7l onnxruntime): the bundle's graphs run by ``numpy_graph.NumpyGraph``, numpy only (no onnx,
  qonnx or onnxruntime), bit for bit the ``ort`` engine's results
  (``tests/daemon/test_numpy_graph.py``).

Inputs are raw crops N x 64 x 64 uint8; the graph's integer input equals the pixel value.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from snapseal.daemon.accel.base import Latent, PixelDist
from snapseal.daemon.accel.qonnx_graph import (QuantParams, add_constant, fold_weight_quants, load_wrapper,
                                               rewrite_quant_nodes, with_batch)
from snapseal.daemon.bundle import Bundle
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.likelihood import pixel_dist_from_output

ENGINES = ("ort", "qonnx", "numpy")
DEFAULT_BATCH = 32

log = logging.getLogger("snapseal.accel")


def missing_for_ort() -> list[str]:
    """What the ``ort`` engine needs and does not import here: onnxruntime runs the graph,
    qonnx (with onnx) prepares it."""
    missing = []
    for module in ("onnxruntime", "qonnx.core.modelwrapper"):
        try:
            importlib.import_module(module)
        except (ImportError, OSError):  # not installed, or a shared library that does not load
            missing.append(module.split(".")[0])
    return missing


def default_engine() -> str:
    """``ort`` where it can run (same results as always), else ``numpy`` (the same bits)."""
    missing = missing_for_ort()
    if not missing:
        return "ort"
    log.info("emulate: %s not installed here; using the numpy engine (same results, slower)",
             " and ".join(missing) + (" is" if len(missing) == 1 else " are"))
    return "numpy"


def check_crops(crops: np.ndarray, where: str) -> np.ndarray:
    """N x 64 x 64 uint8 or a SnapsealError naming where it was passed."""
    if not isinstance(crops, np.ndarray):
        raise SnapsealError(f"{where}: crops must be a numpy array, got {type(crops).__name__}")
    if crops.dtype != np.uint8 or crops.ndim != 3 or crops.shape[1:] != (64, 64):
        raise SnapsealError(f"{where}: crops must be N x 64 x 64 uint8, got {crops.dtype} {crops.shape}")
    return crops


def check_latents(z: np.ndarray, latent_dim: int, where: str) -> np.ndarray:
    z = np.asarray(z)
    if z.ndim == 4 and z.shape[2:] == (1, 1):
        z = z[:, :, 0, 0]
    if z.ndim != 2 or z.shape[1] != latent_dim or not np.issubdtype(z.dtype, np.floating):
        raise SnapsealError(f"{where}: latents must be N x {latent_dim} float, got {z.dtype} {z.shape}")
    if not np.all(np.isfinite(z)):
        raise SnapsealError(f"{where}: latents contain NaN or inf")
    return z.astype(np.float32)


class QonnxRunner:
    """execute_onnx on fixed-batch copies (the reference engine; slow: a session per node)."""

    def __init__(self, path: Path, batch: int) -> None:
        self.path = path
        self.batch = batch
        base = fold_weight_quants(load_wrapper(path))
        self.model = with_batch(base, batch)
        self.input_name = self.model.graph.input[0].name
        self.output_names = [o.name for o in self.model.graph.output]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        from qonnx.core.onnx_exec import execute_onnx

        return execute_onnx(self.model, {self.input_name: x})


def quant_to_standard_ops(model):
    """Rewrite every qonnx Quant node as Div, Round, Clip, Mul: exact integer arithmetic.

    Only power-of-two scales, zero zero-points and ROUND occur in snapseal's graphs; others are
    refused (they would not be exact)."""
    from onnx import helper

    def exact(node, q: QuantParams, graph) -> list:
        if np.any(q.zero_point != 0):
            raise SnapsealError(f"Quant node {node.name}: non-zero zero point is not supported")
        mant, _ = np.frexp(np.asarray(q.scale, dtype=np.float64))
        if np.any(mant != 0.5):
            raise SnapsealError(f"Quant node {node.name}: scale is not a power of two")
        if q.rounding_mode != "ROUND":
            raise SnapsealError(f"Quant node {node.name}: rounding mode {q.rounding_mode} not supported")
        names = {k: f"{q.name}__{k}" for k in ("div", "round", "clip")}
        scale = add_constant(graph, f"{q.name}__scale", q.scale)
        lo, hi = add_constant(graph, f"{q.name}__lo", q.lo), add_constant(graph, f"{q.name}__hi", q.hi)
        return [
            helper.make_node("Div", [node.input[0], scale], [names["div"]], name=names["div"]),
            helper.make_node("Round", [names["div"]], [names["round"]], name=names["round"]),
            helper.make_node("Clip", [names["round"], lo, hi], [names["clip"]], name=names["clip"]),
            helper.make_node("Mul", [names["clip"], scale], [node.output[0]], name=f"{q.name}__mul"),
        ]

    return rewrite_quant_nodes(model, exact)


class OrtRunner:
    """The whole graph (Quant rewritten as standard ops) in one onnxruntime session, any batch."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = path
        model = quant_to_standard_ops(fold_weight_quants(load_wrapper(path)))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 3  # the folded weights' Quant parameters are unused: no warnings
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(model.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise SnapsealError(f"{path}: onnxruntime cannot load the emulation graph ({str(exc).splitlines()[0]})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(None, {self.input_name: x})))


class NumpyRunner:
    """The graph as read from the bundle (Quant nodes and all) run by numpy_graph, any batch.
    Threads are numpy's BLAS's to choose (OPENBLAS_NUM_THREADS), not ``threads``."""

    def __init__(self, path: Path) -> None:
        from snapseal.daemon.accel.numpy_graph import NumpyGraph

        self.path = path
        self.graph = NumpyGraph.load(path)
        self.input_name = self.graph.inputs[0]
        self.output_names = list(self.graph.outputs)

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.graph({self.input_name: x})


def _make_runner(engine: str, path: Path, batch: int, threads: int):
    if engine == "qonnx":
        return QonnxRunner(path, batch)
    if engine == "ort":
        return OrtRunner(path, threads)
    if engine == "numpy":
        return NumpyRunner(path)
    raise SnapsealError(f"unknown emulation engine {engine!r}; known: {', '.join(ENGINES)}")


class EmulateAccelerator:
    """Accelerator backend over the bundle's QONNX graphs (see the module docstring)."""

    name = "emulate"

    def __init__(self, bundle: Bundle, engine: Optional[str] = None, batch_size: int = DEFAULT_BATCH, threads: int = 1) -> None:
        engine = default_engine() if engine is None else engine
        if engine not in ENGINES:
            raise SnapsealError(f"unknown emulation engine {engine!r}; known: {', '.join(ENGINES)}")
        self.bundle = bundle
        self.engine = engine
        self.batch_size = max(1, int(batch_size))
        self.threads = threads
        self._runners: dict[str, Callable[[np.ndarray], dict[str, np.ndarray]]] = {}

    def _runner(self, graph: str):
        if graph not in self._runners:
            self._runners[graph] = _make_runner(self.engine, self.bundle.graphs[graph], self.batch_size, self.threads)
        return self._runners[graph]

    def _run(self, graph: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run in chunks of batch_size; the qonnx engine pads the last chunk (fixed-shape graph)."""
        runner = self._runner(graph)
        parts: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(x), self.batch_size):
            chunk = x[start : start + self.batch_size]
            n = len(chunk)
            if self.engine == "qonnx" and n < self.batch_size:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - n,) + chunk.shape[1:], chunk.dtype)])
            for k, v in runner(chunk).items():
                parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32)[:n])
        return {k: np.concatenate(v) for k, v in parts.items()}

    def _pixels(self, crops: np.ndarray) -> np.ndarray:
        check_crops(crops, f"{self.bundle.path}: emulate backend")
        return crops.astype(np.float32)[:, None, :, :]

    def _latent(self, out: dict[str, np.ndarray]) -> Latent:
        n = out["mu_z"].shape[0]
        return Latent(mu=out["mu_z"].reshape(n, -1), log_sigma=out["log_sigma_z"].reshape(n, -1))

    def _pixel_dist(self, raw: np.ndarray) -> PixelDist:
        return pixel_dist_from_output(raw, self.bundle.log_sigma_floor)

    def forward_at_mean(self, crops: np.ndarray) -> tuple[Latent, PixelDist]:
        out = self.run_forward_at_mean_raw(crops)
        return self._latent(out), self._pixel_dist(out["decoder_out"])

    def run_forward_at_mean_raw(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's own outputs (mu_z, log_sigma_z, decoder_out) as floats, for bit-exact checks."""
        return self._run("forward_at_mean", self._pixels(crops))

    def encode(self, crops: np.ndarray) -> Latent:
        return self._latent(self._run("encoder", self._pixels(crops)))

    def decode(self, z: np.ndarray) -> PixelDist:
        z = check_latents(z, self.bundle.latent_dim, f"{self.bundle.path}: emulate backend")
        return self._pixel_dist(self._run("decoder", z[:, :, None, None])["decoder_out"])
