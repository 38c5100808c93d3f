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
from snapseal.daemon.accel.emulate import _fold_weight_quants, _load_wrapper, check_crops, check_latents
from snapseal.daemon.bundle import Bundle
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.likelihood import pixel_dist_from_output


def clip_activation_quants(model):
    """Replace every remaining (activation) Quant node by a float Clip to the same range: the
    learned ranges stay (the QAT model relies on its saturation), the rounding goes."""
    from onnx import helper, numpy_helper

    graph = model.graph
    new_nodes = []
    for node in graph.node:
        if node.op_type != "Quant":
            new_nodes.append(node)
            continue
        scale = float(np.asarray(model.get_initializer(node.input[1])).max())
        bits = int(np.asarray(model.get_initializer(node.input[3])).item())
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
        lo = (-(2 ** (bits - 1)) + (1 if narrow else 0)) if signed else 0
        hi = (2 ** (bits - 1) - 1) if signed else (2**bits - 1)
        base = node.name or node.output[0]
        graph.initializer.append(numpy_helper.from_array(np.asarray(lo * scale, dtype=np.float32), f"{base}__lo"))
        graph.initializer.append(numpy_helper.from_array(np.asarray(hi * scale, dtype=np.float32), f"{base}__hi"))
        new_nodes.append(helper.make_node("Clip", [node.input[0], f"{base}__lo", f"{base}__hi"], [node.output[0]], name=f"{base}__clip"))
    del graph.node[:]
    graph.node.extend(new_nodes)
    while len(graph.value_info) > 0:
        graph.value_info.remove(graph.value_info[0])
    for vi in list(graph.input) + list(graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "batch"
    model.model.opset_import[0].version = max(13, model.model.opset_import[0].version)
    del model.model.opset_import[1:]
    from qonnx.transformation.general import RemoveUnusedTensors

    return model.transform(RemoveUnusedTensors())


class CpuAccelerator:
    name = "cpu"

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        import onnxruntime as ort

        self.bundle = bundle
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._sessions = {}
        for name in ("encoder", "decoder"):
            path = bundle.graphs[name]
            model = clip_activation_quants(_fold_weight_quants(_load_wrapper(path)))
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
