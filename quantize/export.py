"""QONNX export of the trained VAE: encoder, decoder and the forward-at-mean graph.

Every graph has batch size 1 (what FINN builds) and fixed tensor names the daemon relies on:

- ``encoder.onnx``:          pixels (1x1x64x64, raw grey levels 0..255) -> mu_z, log_sigma_z (1xDx1x1)
- ``decoder.onnx``:          z (1xDx1x1) -> decoder_out (1x2x64x64: mu_x logits, log_sigma_x raw)
- ``forward_at_mean.onnx``:  pixels -> mu_z, log_sigma_z, decoder_out (decoder run at z = mu_z)

Exported with ``brevitas.export.export_qonnx(..., dynamo=False)`` (the dynamo exporter fails on QuantUpsamplingNearest2d) and cleaned with
qonnx transforms. ``float/`` variants (plain ONNX of the float twin or the same weights without
quantizers) are written by ``export_float`` for the fast ``cpu`` backend.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from snapseal.daemon.errors import SnapsealError
from snapseal.quantize.model import VAE, ForwardAtMean

PIXELS = "pixels"
Z = "z"
MU_Z = "mu_z"
LOG_SIGMA_Z = "log_sigma_z"
DECODER_OUT = "decoder_out"

GRAPH_IO = {
    "encoder": ([PIXELS], [MU_Z, LOG_SIGMA_Z]),
    "decoder": ([Z], [DECODER_OUT]),
    "forward_at_mean": ([PIXELS], [MU_Z, LOG_SIGMA_Z, DECODER_OUT]),
}


@dataclass(frozen=True)
class ExportedGraphs:
    encoder: Path
    decoder: Path
    forward_at_mean: Path


def _modules(vae: VAE) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    pixels = torch.zeros(1, 1, 64, 64)
    z = torch.zeros(1, vae.cfg.latent_dim, 1, 1)
    return {
        "encoder": (vae.encoder, pixels),
        "decoder": (vae.decoder, z),
        "forward_at_mean": (ForwardAtMean(vae).eval(), pixels),  # a new Module starts in train mode
    }


def clean_qonnx(path: Path, input_names: list[str], output_names: list[str]) -> None:
    """qonnx cleanup in place: shapes, constants, unique node names, stable I/O names, datatypes."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (
        GiveReadableTensorNames,
        GiveUniqueNodeNames,
        RemoveStaticGraphInputs,
        RemoveUnusedTensors,
        SortGraph,
    )
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    for t in (InferShapes(), FoldConstants(), RemoveStaticGraphInputs(), GiveUniqueNodeNames(), GiveReadableTensorNames(), InferDataTypes(), RemoveUnusedTensors(), SortGraph()):
        model = model.transform(t)
    # GiveReadableTensorNames calls them global_in / global_out(_N): give the daemon's names back
    for old, new in zip([i.name for i in model.graph.input], input_names):
        model.rename_tensor(old, new)
    for old, new in zip([o.name for o in model.graph.output], output_names):
        model.rename_tensor(old, new)
    model = model.transform(InferShapes())
    model.save(str(path))


def export_qonnx_graphs(vae: VAE, out_dir: Path) -> ExportedGraphs:
    """Write the three QONNX graphs of a quantized model into out_dir."""
    from brevitas.export import export_qonnx

    if not vae.cfg.quantized:
        raise SnapsealError("export_qonnx_graphs needs the quantized model (VAEConfig.quantized=True)")
    out_dir.mkdir(parents=True, exist_ok=True)
    was_training = vae.training
    vae.eval()
    paths = {}
    try:
        for name, (module, example) in _modules(vae).items():
            path = out_dir / f"{name}.onnx"
            inputs, outputs = GRAPH_IO[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_qonnx(module, example, export_path=str(path), dynamo=False, input_names=inputs, output_names=outputs)
            # export restores the exported module's own mode: keep the whole model in eval
            vae.eval()
            clean_qonnx(path, inputs, outputs)
            paths[name] = path
    finally:
        vae.train(was_training)
    return ExportedGraphs(**paths)


def export_float_graphs(vae: VAE, out_dir: Path) -> ExportedGraphs:
    """Plain ONNX (dynamic batch) of a float model, for the ``cpu`` backend (onnxruntime)."""
    if vae.cfg.quantized:
        raise SnapsealError("export_float_graphs needs a float model (VAEConfig.quantized=False)")
    out_dir.mkdir(parents=True, exist_ok=True)
    vae.eval()
    paths = {}
    for name, (module, example) in _modules(vae).items():
        path = out_dir / f"{name}.onnx"
        inputs, outputs = GRAPH_IO[name]
        axes = {n: {0: "batch"} for n in inputs + outputs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (example,), str(path), input_names=inputs, output_names=outputs,
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )
        paths[name] = path
    return ExportedGraphs(**paths)


def main(argv: list[str] | None = None) -> int:
    from snapseal.quantize.train import load_model

    p = argparse.ArgumentParser(description="Export a trained checkpoint to QONNX graphs")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    vae = load_model(args.checkpoint)
    graphs = export_qonnx_graphs(vae, Path(args.out))
    for g in (graphs.encoder, graphs.decoder, graphs.forward_at_mean):
        print(g)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
