"""The VAE's variants, all built from the daemon's own scorers and accelerator backends:

* quantized, as the camera runs it: ``load_scorer(backend="emulate")`` (bit-exact to the FPGA);
  the default score is itself the FPGA's estimator (one pass at z = mu_z + host-side features);
* the paper's score with the FPGA's estimator: log N(x | decoder(mu_z)) from ONE forward pass
  (``likelihood.log_likelihood_at_mean``) instead of L = 10 decoder passes;
* ``cpu``: the bundle's 4-bit weights with float activations (onnxruntime);
* float twin: the same architecture trained without quantization (``build/train/float``), run
  by torch behind the Accelerator protocol, scored by the SAME scorer classes.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from snapseal.daemon.accel.base import Latent, PixelDist
from snapseal.eval.methods import DEFAULT_EMULATE, PAPER_EMULATE, MethodSet, QualityMethod, _batched

def ablation_params(deployed) -> dict:
    """Ablations of the default score: its constants with one term removed, and the
    previous default, to see which term buys the ERC gain."""
    from dataclasses import replace

    from snapseal.daemon.scoring.complexity import ComplexityParams

    return {
        "ablation: default without the sharpness term": replace(deployed, sharpness_weight=0.0),
        "ablation: previous default (s0 3, w_noise 1.5, c0 40, no sharpness)": ComplexityParams(
            noise_floor=3.0, noise_weight=1.5, contrast_floor=40.0, exposure_weight=1.0, sharpness_weight=0.0),
    }


DEFAULT_FLOAT_CHECKPOINT = Path(__file__).resolve().parents[1] / "build" / "train" / "float" / "last.pt"


class WithoutVaeTerm:
    """The default score minus its VAE term: what the host-side terms (PNG bits, noise,
    exposure, sharpness) do alone. An ablation: if it matches the default, the VAE (its
    training data, its size) adds nothing to the error-versus-reject curve."""

    name = "host-terms-only"

    def __init__(self, scorer) -> None:
        self.scorer = scorer
        self.model_id = scorer.model_id

    def score_batch(self, crops: np.ndarray) -> np.ndarray:
        parts = self.scorer.components(crops)
        return parts["score"] - parts["loglik_bits"]


class PaperAtMeanScorer:
    """The paper's likelihood with the FPGA's single-pass estimator (L = 1 at z = mu_z)."""

    name = "paper-at-mean"

    def __init__(self, accel, model_id: str) -> None:
        self.accel = accel
        self.model_id = model_id

    def score_batch(self, crops: np.ndarray) -> np.ndarray:
        from snapseal.daemon.scoring.likelihood import log_likelihood_at_mean

        _, dist = self.accel.forward_at_mean(crops)
        return log_likelihood_at_mean(crops, dist)


class TorchFloatAccelerator:
    """A torch VAE (the float twin) behind the Accelerator protocol; workstation only."""

    name = "float-twin"

    def __init__(self, model, log_sigma_floor: float) -> None:
        import torch

        torch.set_num_threads(1)
        self.model = model.eval()
        self.log_sigma_floor = log_sigma_floor

    def _pixels(self, crops: np.ndarray):
        import torch

        return torch.from_numpy(np.asarray(crops, np.float32)).unsqueeze(1)

    def encode(self, crops: np.ndarray) -> Latent:
        import torch

        with torch.no_grad():
            mu, log_sigma = self.model.encoder(self._pixels(crops))
        n = len(crops)
        return Latent(mu=mu.numpy().reshape(n, -1), log_sigma=log_sigma.numpy().reshape(n, -1))

    def decode(self, z: np.ndarray) -> PixelDist:
        import torch

        from snapseal.daemon.scoring.likelihood import pixel_dist_from_output

        z = np.asarray(z, np.float32)
        with torch.no_grad():
            out = self.model.decoder(torch.from_numpy(z).reshape(len(z), -1, 1, 1))
        return pixel_dist_from_output(out.numpy(), self.log_sigma_floor)

    def forward_at_mean(self, crops: np.ndarray) -> tuple[Latent, PixelDist]:
        latent = self.encode(crops)
        return latent, self.decode(latent.mu)


def bundle_training(bundle) -> dict:
    """The manifest's free-form ``training`` record (epochs, data, checkpoint), {} if absent."""
    import json

    from snapseal.daemon.bundle import MANIFEST

    try:
        return dict(json.loads((Path(bundle.path) / MANIFEST).read_text()).get("training") or {})
    except (OSError, ValueError):
        return {}


def same_training_run(bundle) -> bool:
    """Whether the QAT checkpoint at the manifest's path is the run the bundle was exported
    from (then the float checkpoint it started from is the bundle's own float twin)."""
    from snapseal.quantize.bundle_writer import checkpoint_mismatch, training_checkpoint

    checkpoint = training_checkpoint(bundle.manifest, Path(__file__).resolve().parents[1])
    return checkpoint is not None and checkpoint_mismatch(checkpoint, bundle.manifest) is None


def describe_bundle(bundle_dir: Path | None) -> str:
    """One line about the model under test, for the report."""
    from snapseal.daemon.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    training = bundle_training(bundle)
    hyper = training.get("hyper", {})
    return (f"bundle `{bundle.path.name}` model `{bundle.model_id}`: trained {training.get('epochs', '?')} epochs "
            f"({training.get('steps', '?')} steps, {training.get('train_seconds', '?')} s) on {hyper.get('data', '?')} "
            f"with objective {training.get('objective', '?')}; QAT initialised from {hyper.get('init_from') or 'scratch'}")


def vae_methods(bundle_dir: Path | None = None, float_checkpoint: Path | None = DEFAULT_FLOAT_CHECKPOINT) -> MethodSet:
    found = MethodSet()
    try:
        from snapseal.daemon.accel import make_accelerator
        from snapseal.daemon.bundle import MANIFEST, load_bundle
        from snapseal.daemon.scoring import load_scorer
        from snapseal.daemon.scoring.complexity import ComplexityParams, ComplexityScorer
        from snapseal.daemon.scoring.paper import PaperScorer

        bundle = load_bundle(bundle_dir)
    except Exception as exc:
        found.missing.append(f"VAE: the bundle or the daemon's scorers could not be loaded ({type(exc).__name__}: {exc})")
        return found

    def add(label: str, make, note: str, key: str = "") -> None:
        try:
            scorer = make()
        except Exception as exc:
            found.missing.append(f"{label}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return
        found.methods.append(QualityMethod(label, "vae", lambda b, s=scorer: _batched(s, b.crops), note, key=key))

    default_name = load_scorer(bundle_dir, "emulate").name
    add(f"VAE default score ({default_name}), 4-bit, emulate = FPGA estimator",
        lambda: load_scorer(bundle_dir, "emulate", "default"),
        f"bundle {bundle.model_id}: one pass at mu_z on the bit-exact emulation + host terms", DEFAULT_EMULATE)
    add(f"VAE default score ({default_name}), 4-bit weights, float activations (cpu)",
        lambda: load_scorer(bundle_dir, "cpu", "default"), "onnxruntime float path", "vae-default-cpu")
    # Ablations share one emulate session with each other
    deployed = ComplexityParams.from_manifest(bundle.scorers.get("complexity"), str(bundle.path / MANIFEST))
    emulate = functools.cache(lambda: make_accelerator("emulate", bundle))
    for label, ablation in ablation_params(deployed).items():
        add(f"VAE {label}, 4-bit, emulate",
            lambda c=ablation: ComplexityScorer(emulate(), bundle.model_id, c), f"ablation: {ablation}")
    add("VAE ablation: default without the VAE term (host terms only)",
        lambda: WithoutVaeTerm(ComplexityScorer(emulate(), bundle.model_id, deployed)),
        "PNG bits - noise bits - exposure bits + sharpness bits: no model", "vae-ablation-host-terms-only")
    add("VAE paper log RP L=10, 4-bit, emulate", lambda: load_scorer(bundle_dir, "emulate", "paper"),
        "the paper's score, L = 10 decoder passes with the bundle's epsilon table", PAPER_EMULATE)
    add("VAE paper log p(x|mu_z), 4-bit, emulate = FPGA estimator",
        lambda: PaperAtMeanScorer(make_accelerator("emulate", bundle), bundle.model_id),
        "the paper's likelihood from the single pass the FPGA computes", "vae-paper-at-mean-emulate")
    # The float twin the bundle's QAT started from (its manifest says), so float vs 4-bit
    # compares one training lineage; else the given/default checkpoint.
    lineage = bundle_training(bundle).get("hyper", {}).get("init_from")
    if lineage and Path(lineage).is_file():
        float_checkpoint = Path(lineage)
    elif lineage:
        root = Path(__file__).resolve().parents[1]
        if (root / lineage).is_file():
            float_checkpoint = root / lineage
    twin = "float twin (torch)"
    if float_checkpoint is not None and Path(float_checkpoint).is_file() and not same_training_run(bundle):
        # `make bundle` elsewhere wrote these paths: same recipe and data, another run
        twin = "float twin of a retrain on this machine (torch)"
    if float_checkpoint is not None and Path(float_checkpoint).is_file():
        def float_accel():
            from snapseal.quantize.train import load_model

            return TorchFloatAccelerator(load_model(float_checkpoint), bundle.log_sigma_floor)

        add(f"VAE default score ({default_name}), {twin}",
            lambda: ComplexityScorer(float_accel(), f"float:{float_checkpoint}", deployed),
            f"{float_checkpoint}: the same architecture trained without quantization")
        add(f"VAE paper log RP L=10, {twin}",
            lambda: PaperScorer(float_accel(), bundle.epsilon, f"float:{float_checkpoint}"),
            f"{float_checkpoint}")
    else:
        found.missing.append(f"VAE float twin: checkpoint {float_checkpoint} not found (run `make bundle`)")
    return found
