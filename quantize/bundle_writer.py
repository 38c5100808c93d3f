"""Write the software part of an accelerator bundle (format: ``snapseal.daemon.bundle``).

    python -m snapseal.quantize.bundle_writer CHECKPOINT --out bundles/default [--val val.npz]

exports the three QONNX graphs, reads each output's integer->float scale and bit width from the
graphs, writes the fixed epsilon table and manifest.json (with sha256 of every file), then loads
the result back with ``load_bundle`` to prove it verifies. `make bitstream` (hw/bitstream.py) adds the
bitstream files and the ``hardware`` section with ``snapseal.daemon.bundle.write_manifest``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snapseal.daemon.bundle import FORMAT_VERSION, Bundle, load_bundle, write_manifest
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring import DEFAULT_SCORER, SCORERS
from snapseal.daemon.scoring.complexity import ComplexityParams
from snapseal.daemon.scoring.likelihood import DEFAULT_EPSILON_SAMPLES, DEFAULT_EPSILON_SEED, LOG_SIGMA_FLOOR, epsilon_table
from snapseal.quantize.export import export_qonnx_graphs
from snapseal.quantize.model import VAE, log2_exact

EPSILON_FILE = "epsilon.npy"


def quant_spec_of(graph_path: Path, tensor: str) -> dict[str, Any]:
    """Scale, bit width and signedness of the Quant node producing `tensor` (a graph output)."""
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(graph_path))
    node = model.find_producer(tensor)
    if node is None or node.op_type != "Quant":
        raise SnapsealError(f"{graph_path}: output {tensor!r} is not produced by a Quant node")
    scale = model.get_initializer(node.input[1])
    zero_point = model.get_initializer(node.input[2])
    bits = model.get_initializer(node.input[3])
    if scale is None or np.asarray(scale).size != 1 or np.any(np.asarray(zero_point) != 0):
        raise SnapsealError(f"{graph_path}: output {tensor!r} must have one scale and zero point 0")
    scale_value = float(np.asarray(scale).item())
    if not log2_exact(scale_value):
        raise SnapsealError(f"{graph_path}: output {tensor!r} scale {scale_value} is not a power of two")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    shape = model.get_tensor_shape(tensor)
    return {"name": tensor, "shape": list(shape), "scale": scale_value, "bits": int(np.asarray(bits).item()), "signed": bool(attrs.get("signed", 1))}


def training_checkpoint(manifest: dict[str, Any], root: Path | None = None) -> Path | None:
    """The QAT checkpoint the manifest's ``training`` section names (``hyper.out`` /
    ``checkpoint``), as given or relative to ``root`` (the repository); None if not on disk."""
    training = manifest.get("training") or {}
    recorded = training.get("hyper") or training.get("args") or {}
    out, name = recorded.get("out") or training.get("out"), training.get("checkpoint")
    if not out or not name:
        return None
    for base in (Path(out), (root / out) if root is not None else None):
        if base is not None and (base / name).is_file():
            return base / name
    return None


def checkpoint_mismatch(checkpoint: Path, manifest: dict[str, Any]) -> str | None:
    """Why the checkpoint is not the training run the bundle was exported from, or None.

    A retrain writes the same path; comparing it with the bundle would report every weight as
    a hardware mismatch. The manifest keeps the run's last history entry (loss to 16 digits,
    step), which a bit-exact reproduction matches and another run does not."""
    import torch

    recorded = ((manifest.get("training") or {}).get("history") or [])[-1:]
    if not recorded:
        return None  # nothing to compare with: trust the path
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    history = (state.get("history") or [])[-1:] if isinstance(state, dict) else []
    if not history:
        return "it records no training history"
    mine, theirs = history[0], recorded[0]
    if mine.get("step") != theirs.get("step") or mine.get("loss") != theirs.get("loss"):
        return (f"its last training step {mine.get('step')} ended at loss {mine.get('loss')}, the bundle's run at "
                f"step {theirs.get('step')} with loss {theirs.get('loss')}")
    return None


def default_scorer_sections(epsilon_samples: int = DEFAULT_EPSILON_SAMPLES) -> dict[str, Any]:
    """Both scorers' constants as the manifest stores them: the measured default
    (``complexity``, docs/MODEL_CARD.md) and the paper's log RP beside it."""
    return {"complexity": ComplexityParams().to_manifest(),
            "paper": {"estimator": "log_rp", "samples": epsilon_samples}}


def write_bundle(
    vae: VAE,
    out_dir: Path,
    *,
    training: dict[str, Any] | None = None,
    default_scorer: str = DEFAULT_SCORER,
    scorers: dict[str, Any] | None = None,
    epsilon_samples: int = DEFAULT_EPSILON_SAMPLES,
    epsilon_seed: int = DEFAULT_EPSILON_SEED,
    log_sigma_floor: float = LOG_SIGMA_FLOOR,
    extra_manifest: dict[str, Any] | None = None,
) -> Bundle:
    """Export `vae` and write a complete, verified bundle directory at out_dir (replaced)."""
    out_dir = Path(out_dir)
    cfg = vae.cfg
    with tempfile.TemporaryDirectory(dir=out_dir.parent if out_dir.parent.exists() else None) as tmp:
        stage = Path(tmp) / "bundle"
        graphs = export_qonnx_graphs(vae, stage)
        np.save(stage / EPSILON_FILE, epsilon_table(cfg.latent_dim, epsilon_samples, epsilon_seed))
        fam = graphs.forward_at_mean
        outputs = {name: quant_spec_of(fam, name) for name in ("mu_z", "log_sigma_z", "decoder_out")}
        for name in ("mu_z", "log_sigma_z"):  # the encoder graph must agree with forward_at_mean
            if quant_spec_of(graphs.encoder, name) != outputs[name]:
                raise SnapsealError(f"{graphs.encoder}: output {name} differs from forward_at_mean's")
        if quant_spec_of(graphs.decoder, "decoder_out") != outputs["decoder_out"]:
            raise SnapsealError(f"{graphs.decoder}: decoder_out differs from forward_at_mean's")
        decoder_input = _decoder_input_spec(graphs.decoder)
        graph_digest = hashlib.sha256(fam.read_bytes()).hexdigest()[:12]
        model_id = f"vae-w{cfg.weight_bits}a{cfg.act_bits}-l{cfg.latent_dim}-{graph_digest}"
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "input": {"name": "pixels", "shape": [1, 1, 64, 64], "dtype": "uint8", "scale": 1.0,
                      "note": "raw grey levels 0..255 fed as float32; the input Quant node has scale 1"},
            "latent_dim": cfg.latent_dim,
            "graphs": {name: f"{name}.onnx" for name in ("encoder", "decoder", "forward_at_mean")},
            "outputs": {**outputs, "decoder_out": {**outputs["decoder_out"], "channels": ["mu_x_logits", "log_sigma_x"]}},
            "decoder_input": decoder_input,
            "pixel_transform": {"mu_x": "sigmoid(decoder_out[:, 0])", "log_sigma_x": "max(decoder_out[:, 1], log_sigma_floor)",
                                "log_sigma_floor": log_sigma_floor, "pixels": "uint8 / 255"},
            "epsilon": {"file": EPSILON_FILE, "samples": epsilon_samples, "seed": epsilon_seed, "generator": "numpy PCG64 standard_normal"},
            "architecture": cfg.to_dict(),
            "training": training or {},
            "default_scorer": default_scorer,
            "scorers": scorers or default_scorer_sections(epsilon_samples),
            "hardware": None,
            **(extra_manifest or {}),
        }
        write_manifest(stage, manifest)
        load_bundle(stage)  # proves the staged bundle verifies before it replaces anything
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(stage, out_dir)
    return load_bundle(out_dir)


def _decoder_input_spec(decoder_graph: Path) -> dict[str, Any]:
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(decoder_graph))
    consumers = model.find_consumers("z")
    if not consumers or consumers[0].op_type != "Quant":
        raise SnapsealError(f"{decoder_graph}: input z is not quantized first")
    node = consumers[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {
        "name": "z",
        "shape": list(model.get_tensor_shape("z")),
        "scale": float(np.asarray(model.get_initializer(node.input[1])).item()),
        "bits": int(np.asarray(model.get_initializer(node.input[3])).item()),
        "signed": bool(attrs.get("signed", 1)),
    }


def main(argv: list[str] | None = None) -> int:
    from snapseal.quantize.train import load_checkpoint, load_model

    p = argparse.ArgumentParser(description="Write an accelerator bundle from a trained QAT checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--default-scorer", default=DEFAULT_SCORER, choices=SCORERS)
    p.add_argument("--scorers-json", help="JSON object of scorer parameters to store in the manifest")
    p.add_argument("--training-json", help="JSON file with extra training facts (merged into manifest['training'])")
    p.add_argument("--val", help="held-out crops: measure speed and Spearman figures into manifest['measured']")
    p.add_argument("--float-checkpoint", help="the float twin's checkpoint (quantized vs float Spearman)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        vae = load_model(args.checkpoint)
        training = {
            "checkpoint": Path(args.checkpoint).name,
            "objective": ckpt.objective,
            "epochs": ckpt.epoch,
            "steps": ckpt.step,
            "train_seconds": round(ckpt.train_seconds, 1),
            "hyper": ckpt.hyper,
            "history": ckpt.history[-1:] if ckpt.history else [],
        }
        if args.training_json:
            training.update(json.loads(Path(args.training_json).read_text()))
        scorers = json.loads(args.scorers_json) if args.scorers_json else None
        bundle = write_bundle(vae, Path(args.out), training=training, default_scorer=args.default_scorer, scorers=scorers)
    except SnapsealError as exc:
        print(f"snapseal-bundle: error: {exc}")
        return 2
    if args.val:
        from snapseal.eval.model.bench_accel import heldout_crops, measure

        measured = measure(bundle.path, heldout_crops(args.val), Path(args.float_checkpoint) if args.float_checkpoint else None)
        measured.pop("bundle", None)
        if args.float_checkpoint:
            float_ckpt = load_checkpoint(args.float_checkpoint)
            measured["float_train_seconds"] = round(float_ckpt.train_seconds, 1)
        write_manifest(bundle.path, {**bundle.manifest, "measured": measured})
        bundle = load_bundle(bundle.path)
        print(json.dumps(measured, indent=2))
    print(f"bundle {bundle.model_id} -> {bundle.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
