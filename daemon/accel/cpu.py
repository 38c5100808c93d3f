"""The ``cpu`` backend: a fast float path, onnxruntime with all graph optimisations.

Built in memory from the bundle's own QONNX graphs (no extra files): the weights' Quant nodes are
folded into constants (the exact 4-bit weights the hardware uses) and every activation Quant
node becomes a float Clip to its range, so activations stay float32 (no rounding). It is NOT bit-exact with the hardware; it trades
exactness for speed (fused Conv+BN, multi-threading). ``python -m
snapseal.eval.model.bench_accel`` (see mk/train.mk ``make bench-accel``) reports its speed and its
Spearman rank correlation with ``emulate``.
"""

from __future__ import annotations

import numpy as np

from snapseal.daemon.accel.base import Latent, PixelDist
from snapseal.daemon.accel.emulate import check_crops, check_latents
from snapseal.daemon.accel.qonnx_graph import QuantParams, add_constant, fold_weight_quants, load_wrapper, rewrite_quant_nodes
from snapseal.daemon.bundle import Bundle
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.likelihood import pixel_dist_from_output


def clip_activation_quants(model):
    """Replace every remaining (activation) Quant node by a float Clip to the same range: the
    learned ranges stay (the QAT model relies on its saturation), the rounding goes."""
    from onnx import helper
    from qonnx.transformation.general import RemoveUnusedTensors

    def clip(node, q: QuantParams, graph) -> list:
        scale = float(np.asarray(q.scale).max())
        lo = add_constant(graph, f"{q.name}__lo", q.lo * scale)
        hi = add_constant(graph, f"{q.name}__hi", q.hi * scale)
        return [helper.make_node("Clip", [node.input[0], lo, hi], [node.output[0]], name=f"{q.name}__clip")]

    return rewrite_quant_nodes(model, clip).transform(RemoveUnusedTensors())


class CpuAccelerator:
    name = "cpu"

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except (ImportError, OSError):
            raise SnapsealError("accelerator backend 'cpu' needs onnxruntime, which is not installed here "
                                "(none exists for armv7l): use backend 'emulate' (its numpy engine needs numpy only)") from None

        self.bundle = bundle
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._sessions = {}
        for name in ("encoder", "decoder"):
            path = bundle.graphs[name]
            model = clip_activation_quants(fold_weight_quants(load_wrapper(path)))
            try:
                self._sessions[name] = ort.InferenceSession(model.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise SnapsealError(f"{path}: onnxruntime cannot load the float graph ({str(exc).splitlines()[0]})") from None

    def _run(self, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
        session = self._sessions[name]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))

    def encode(self, crops: np.ndarray) -> Latent:
        check_crops(crops, f"{self.bundle.path}: cpu backend")
        out = self._run("encoder", crops.astype(np.float32)[:, None])
        n = len(crops)
        return Latent(mu=out["mu_z"].reshape(n, -1), log_sigma=out["log_sigma_z"].reshape(n, -1))

    def decode(self, z: np.ndarray) -> PixelDist:
        z = check_latents(z, self.bundle.latent_dim, f"{self.bundle.path}: cpu backend")
        raw = self._run("decoder", z[:, :, None, None])["decoder_out"]
        return pixel_dist_from_output(raw, self.bundle.log_sigma_floor)

    def forward_at_mean(self, crops: np.ndarray) -> tuple[Latent, PixelDist]:
        latent = self.encode(crops)
        return latent, self.decode(latent.mu)
