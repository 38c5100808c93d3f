"""Research: which quality score prefers sharp, well-lit, unoccluded, centred faces?

The paper's log RP prefers blurred faces (docs/MODEL_CARD.md). This module measures
candidate scores on the degradation-ranking test (``quantize.ranking``) over held-out, real
faces and chooses weights on one identity-disjoint half ("select") while reporting the other
("report"), then the other way round (2-fold cross-validation by identity).

Every candidate is computed from what the accelerator outputs (mu_z, log_sigma_z, and mu_x,
log_sigma_x at z = mu_z or at the L table samples) plus cheap host-side numpy/cv2 work:

    python -m snapseal.eval.model.score_candidates [--bundle DIR | --checkpoint PT] [--val NPZ]

prints the table and writes build/measure/candidates.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from snapseal.daemon.accel.base import Latent, PixelDist
from snapseal.daemon.scoring import features as ft
from snapseal.eval.model import features as research_ft
from snapseal.daemon.scoring import likelihood
from snapseal.eval.model import ranking

N_PIX = 64 * 64
LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------
# An Accelerator over a torch checkpoint (research only; the daemon uses the bundle backends)


class TorchAccelerator:
    """The Accelerator Protocol over a VAE checkpoint (float or QAT), torch on 1 thread."""

    name = "torch"

    def __init__(
        self, checkpoint: str | Path, log_sigma_floor: float = likelihood.LOG_SIGMA_FLOOR, batch: int = 256, as_float: bool = False
    ) -> None:
        """as_float: run the checkpoint's weights in the float twin (quantizers removed)."""
        import torch

        from snapseal.quantize.train import load_checkpoint, load_model

        torch.set_num_threads(1)
        self.torch = torch
        cfg = load_checkpoint(checkpoint).config.float_twin() if as_float else None
        self.model = load_model(checkpoint, cfg)
        self.floor = log_sigma_floor
        self.batch = batch

    def _chunks(self, x: np.ndarray, fn):
        outs = [fn(x[i : i + self.batch]) for i in range(0, len(x), self.batch)]
        return [np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))]

    def forward_at_mean(self, crops: np.ndarray) -> tuple[Latent, PixelDist]:
        def run(chunk):
            with self.torch.no_grad():
                mu, ls, out = self.model.forward_at_mean(self.torch.from_numpy(chunk.astype(np.float32))[:, None])
            return mu.flatten(1).numpy(), ls.flatten(1).numpy(), out.numpy()

        mu, ls, out = self._chunks(crops, run)
        return Latent(mu, ls), likelihood.pixel_dist_from_output(out, self.floor)

    def encode(self, crops: np.ndarray) -> Latent:
        def run(chunk):
            with self.torch.no_grad():
                mu, ls = self.model.encoder(self.torch.from_numpy(chunk.astype(np.float32))[:, None])
            return mu.flatten(1).numpy(), ls.flatten(1).numpy()

        mu, ls = self._chunks(crops, run)
        return Latent(mu, ls)

    def decode(self, z: np.ndarray) -> PixelDist:
        def run(chunk):
            with self.torch.no_grad():
                out = self.model.decoder(self.torch.from_numpy(chunk.astype(np.float32))[:, :, None, None])
            return (out.numpy(),)

        (out,) = self._chunks(z, run)
        return likelihood.pixel_dist_from_output(out, self.floor)

    def likelihood_regret(self, crops: np.ndarray, steps: int = 30, lr: float = 0.05) -> np.ndarray:
        """Likelihood regret (Xiao et al. 2020), latent variant: how much the deterministic ELBO
        log p(x | z = mu) - KL(q || p) improves when q's (mu, log sigma) are optimised for x
        alone, starting from the encoder's. Needs decoder gradients: NOT computable on the
        accelerator; measured as a research candidate only. N float64 (nats, >= 0)."""
        torch = self.torch
        from snapseal.quantize.objectives import gaussian_log_likelihood, kl_to_standard_normal

        for p in self.model.parameters():
            p.requires_grad_(False)
        pixels = torch.from_numpy(crops.astype(np.float32))[:, None]
        with torch.no_grad():
            mu0, ls0 = self.model.encoder(pixels)

        def elbo(mu, ls):
            return gaussian_log_likelihood(pixels, self.model.decoder(mu)) - kl_to_standard_normal(mu, ls)

        with torch.no_grad():
            start = elbo(mu0, ls0)
        mu, ls = mu0.clone().requires_grad_(True), ls0.clone().requires_grad_(True)
        opt = torch.optim.Adam([mu, ls], lr=lr)
        best = start.clone()
        for _ in range(steps):
            opt.zero_grad()
            value = elbo(mu, ls)
            (-value.sum()).backward()
            opt.step()
            best = torch.maximum(best, value.detach())
        return (best - start).double().numpy()


# ---------------------------------------------------------------------------------------------
# Features: one array per measurement, over all crops of a RankingSet


def compute_features(accel, crops: np.ndarray, epsilon: np.ndarray | None, progress: bool = True) -> dict[str, np.ndarray]:
    """Every measurement a candidate may use, N float64 each (nats for log-likelihoods)."""
    from tqdm import tqdm

    feats: dict[str, list[np.ndarray]] = {}
    batch = 128
    bar = tqdm(total=len(crops), desc="features", disable=not progress, leave=False)
    for start in range(0, len(crops), batch):
        x = crops[start : start + batch]
        latent, dist = accel.forward_at_mean(x)
        part = {
            "ll_mean": likelihood.gaussian_log_likelihood(x, dist),
            "kl": likelihood.kl_divergence(latent),
            "ll_laplace": research_ft.laplace_loglik_nats(x, dist.mu, dist.log_sigma),
            "mse": ((x.astype(np.float64) / 255.0 - dist.mu) ** 2).reshape(len(x), -1).sum(1),
            "mean_log_sigma_x": dist.log_sigma.reshape(len(x), -1).astype(np.float64).mean(1),
            "png_bits": ft.png_bits(x),
            "noise": research_ft.immerkaer_noise_sigma(x),
            "noise_flat": ft.flat_region_noise_sigma(x),
            "lapvar": ft.laplacian_variance(x),
            "mean_level": research_ft.mean_level(x),
            "contrast": ft.contrast(x),
        }
        for floor in (2, 4, 8):
            floored = PixelDist(dist.mu, np.maximum(dist.log_sigma, np.float32(math.log(floor / 255.0))))
            part[f"ll_floor{floor}"] = likelihood.gaussian_log_likelihood(x, floored)
        hp_x, hp_r = research_ft.residual_highpass_energy(x, dist.mu)
        part["hp_x"], part["hp_recon"] = hp_x, hp_r
        if hasattr(accel, "likelihood_regret"):
            part["regret"] = accel.likelihood_regret(x)
        if epsilon is not None:
            part["log_rp"] = likelihood.log_rp(x, accel.encode(x), accel.decode, epsilon)
        for k, v in part.items():
            feats.setdefault(k, []).append(np.asarray(v, np.float64))
        bar.update(len(x))
    bar.close()
    return {k: np.concatenate(v) for k, v in feats.items()}


# ---------------------------------------------------------------------------------------------
# Candidates: name -> (formula text, params grid, fn(features, params) -> scores)

Candidate = tuple[str, dict[str, tuple[float, ...]], Callable[[dict[str, np.ndarray], dict[str, float]], np.ndarray]]


def _bits(nats: np.ndarray) -> np.ndarray:
    return nats / LN2


def _noise_penalty(f, p):
    """Bits spent on noise above the noise floor sigma0 (grey levels), weighted by w_noise."""
    return p.get("w_noise", 1.0) * N_PIX * np.log2(np.maximum(f["noise"], p["sigma0"]) / p["sigma0"])


def _flat_noise_penalty(f, p):
    return p.get("w_noise", 1.0) * N_PIX * np.log2(np.maximum(f["noise_flat"], p["sigma0"]) / p["sigma0"])


def _dark_penalty(f, p):
    """Bits for a mean grey level below `dark0` (0 when well lit)."""
    return N_PIX * np.maximum(0.0, np.log2(p["dark0"] / np.maximum(f["mean_level"], 1.0)))


def _contrast_penalty(f, p):
    """Bits for a grey-level std below `contrast0` (0 with enough contrast)."""
    return N_PIX * np.maximum(0.0, np.log2(p["contrast0"] / np.maximum(f["contrast"], 1.0)))


def _sharpness_bonus(f, p):
    """Bits for the crop's own sharpness: w_sharp 4096 log2(var(Laplacian)). Identity-light
    (Laplacian variance's identity share is about a third of the VAE term's), so it mainly moves
    blurred crops down ACROSS people, which the within-person test cannot see."""
    from snapseal.daemon.scoring.complexity import SHARPNESS_FLOOR

    return p["w_sharp"] * N_PIX * np.log2(np.maximum(f["lapvar"], SHARPNESS_FLOOR))


def _complexity(f, ll="ll_mean"):
    return _bits(f[ll]) + f["png_bits"]


SIGMA0 = (2.0, 3.0, 4.0, 5.0, 6.0)
SIGMA0_FLAT = (1.0, 1.5, 2.0, 3.0, 4.0)
W_NOISE = (1.0, 1.5, 2.0)
DARK0 = (60.0, 80.0, 100.0, 120.0)
CONTRAST0 = (20.0, 30.0, 40.0, 50.0)
W_SHARP = (0.0, 0.125, 0.25, 0.375, 0.5)  # 0 = the formula without the sharpness term

CANDIDATES: dict[str, Candidate] = {
    "paper log RP (L=10)": ("log RP", {}, lambda f, p: f["log_rp"]),
    "log p(x|mu_z)": ("log N(x | mu_x, sigma_x) at z = mu_z", {}, lambda f, p: f["ll_mean"]),
    "-MSE": ("-||x - mu_x||^2", {}, lambda f, p: -f["mse"]),
    "-KL": ("-KL(q(z|x) || p(z))", {}, lambda f, p: -f["kl"]),
    "ELBO at mean": ("log p(x|mu_z) - KL", {}, lambda f, p: f["ll_mean"] - f["kl"]),
    "laplace": ("Laplace log-lik at mu_z", {}, lambda f, p: f["ll_laplace"]),
    "sigma floor 4": ("log-lik, sigma_x >= 4/255", {}, lambda f, p: f["ll_floor4"]),
    "sigma floor 8": ("log-lik, sigma_x >= 8/255", {}, lambda f, p: f["ll_floor8"]),
    "-likelihood regret": ("-(ELBO after optimising q for x - ELBO of the encoder's q)", {}, lambda f, p: -f["regret"]),
    "complexity (S)": ("bits(log p) + PNG bits", {}, lambda f, p: _complexity(f)),
    "complexity rp": ("bits(log RP) + PNG bits", {}, lambda f, p: _complexity(f, "log_rp")),
    "complexity laplace": ("bits(laplace) + PNG bits", {}, lambda f, p: _complexity(f, "ll_laplace")),
    "complexity - KL": ("bits(log p - KL) + PNG bits", {}, lambda f, p: _complexity(f) - _bits(f["kl"])),
    "complexity + noise": (
        "bits(log p) + PNG bits - w 4096 log2(max(noise, s0)/s0)",
        {"sigma0": SIGMA0, "w_noise": W_NOISE},
        lambda f, p: _complexity(f) - _noise_penalty(f, p),
    ),
    "complexity + noise + dark": (
        "bits(log p) + PNG bits - noise bits - 4096 max(0, log2(d0 / mean))",
        {"sigma0": SIGMA0, "w_noise": W_NOISE, "dark0": DARK0},
        lambda f, p: _complexity(f) - _noise_penalty(f, p) - _dark_penalty(f, p),
    ),
    "complexity + noise + contrast": (
        "bits(log p) + PNG bits - noise bits - 4096 max(0, log2(c0 / std))",
        {"sigma0": SIGMA0, "w_noise": W_NOISE, "contrast0": CONTRAST0},
        lambda f, p: _complexity(f) - _noise_penalty(f, p) - _contrast_penalty(f, p),
    ),
    "complexity + flat-noise + dark": (
        "bits(log p) + PNG bits - w 4096 log2(max(flat noise, s0)/s0) - dark bits",
        {"sigma0": SIGMA0_FLAT, "w_noise": W_NOISE, "dark0": DARK0},
        lambda f, p: _complexity(f) - _flat_noise_penalty(f, p) - _dark_penalty(f, p),
    ),
    "complexity + flat-noise + contrast": (
        "bits(log p) + PNG bits - w 4096 log2(max(flat noise, s0)/s0) - 4096 max(0, log2(c0 / std))",
        {"sigma0": SIGMA0_FLAT, "w_noise": W_NOISE, "contrast0": CONTRAST0},
        lambda f, p: _complexity(f) - _flat_noise_penalty(f, p) - _contrast_penalty(f, p),
    ),
    "complexity + flat-noise + contrast + sharpness": (
        "the default + w_sharp 4096 log2(var(Laplacian))",
        {"sigma0": SIGMA0_FLAT, "w_noise": W_NOISE, "contrast0": CONTRAST0, "w_sharp": W_SHARP},
        lambda f, p: _complexity(f) - _flat_noise_penalty(f, p) - _contrast_penalty(f, p) + _sharpness_bonus(f, p),
    ),
    "no VAE: PNG - noise - dark": (
        "PNG bits - noise bits - dark bits (ablation: the VAE term removed)",
        {"sigma0": SIGMA0, "w_noise": W_NOISE, "dark0": DARK0},
        lambda f, p: f["png_bits"] - _noise_penalty(f, p) - _dark_penalty(f, p),
    ),
    "laplacian var (model-free)": ("var(Laplacian(x))", {}, lambda f, p: f["lapvar"]),
}


def evaluate_candidates(
    feats: dict[str, np.ndarray], rset: ranking.RankingSet, folds: list[np.ndarray],
    nonface_feats: dict[str, np.ndarray] | None = None,
) -> dict[str, dict]:
    """Per candidate: its formula, for each fold the params chosen on the OTHER folds and the
    fractions on this fold (cross-validation by identity), and the pooled held-out fractions."""
    results = {}
    for name, (formula, grid, fn) in CANDIDATES.items():
        if any(k not in feats for k in _needs(fn, feats)):
            continue
        combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
        per_fold, held_out_scores = [], np.full(len(rset.crops), np.nan)
        for j, fold in enumerate(folds):
            select_faces = np.concatenate([f for i, f in enumerate(folds) if i != j])
            select = np.isin(rset.face, select_faces)
            best = max(
                combos,
                key=lambda p: _objective(ranking.pair_fractions(fn(feats, p)[select], rset.subset(select_faces))),
            )
            report = np.isin(rset.face, fold)
            scores = fn(feats, best)
            held_out_scores[report] = scores[report]
            per_fold.append({"params": best, "fractions": ranking.pair_fractions(scores[report], rset.subset(fold))})
        pooled = ranking.pair_fractions(held_out_scores, rset)
        # the procedure applied to every face: the constants a bundle would ship (in-sample)
        final = max(combos, key=lambda p: _objective(ranking.pair_fractions(fn(feats, p), rset)))
        final_fractions = ranking.pair_fractions(fn(feats, final), rset)
        if nonface_feats is not None and len(next(iter(nonface_feats.values()))):
            from snapseal.eval.model.measure import face_vs_nonface

            # params of fold 0 (chosen on the other half); background windows share no identity
            params = per_fold[0]["params"]
            clean = rset.kind == ranking.CLEAN
            pooled["face>bg"] = face_vs_nonface(fn(feats, params)[clean], fn(nonface_feats, params))
        results[name] = {"formula": formula, "folds": per_fold, "held_out": pooled,
                         "final_params": final, "final_in_sample": final_fractions}
    return results


def shipped_default_fractions(feats: dict[str, np.ndarray], rset: ranking.RankingSet) -> dict:
    """The default scorer's shipped constants (``ComplexityParams()``) through the same formula."""
    from snapseal.daemon.scoring.complexity import ComplexityParams

    shipped = ComplexityParams()
    params = {"sigma0": shipped.noise_floor, "w_noise": shipped.noise_weight, "contrast0": shipped.contrast_floor,
              "w_sharp": shipped.sharpness_weight}
    scores = CANDIDATES["complexity + flat-noise + contrast + sharpness"][2](feats, params)
    return {"params": params, "fractions": ranking.pair_fractions(scores, rset)}


def _objective(fractions: dict[str, float]) -> tuple[float, float]:
    # the worst degradation first (target: >= 0.9 for EACH), then the mean
    return (fractions["min"], fractions["all"])


def _needs(fn, feats) -> list[str]:
    try:
        fn(feats, {"sigma0": 1.0, "dark0": 1.0, "contrast0": 1.0, "w_sharp": 0.0})
        return []
    except KeyError as exc:
        return [str(exc.args[0])]


def main(argv: list[str] | None = None) -> int:
    from snapseal.eval.model import measure

    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.model.score_candidates", description=__doc__.split("\n")[0])
    measure.add_model_args(parser)
    parser.add_argument("--out", default="build/measure", help="output directory")
    parser.add_argument("--reuse-features", action="store_true", help="reuse OUT/features.npz from an earlier run (same model and data)")
    args = parser.parse_args(argv)
    started = time.time()
    accel, epsilon, label = (None, None, "cached features") if args.reuse_features else measure.open_model(args)
    rset = measure.load_ranking_set(args.val, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "features.npz"
    if args.reuse_features and cache.is_file():
        with np.load(cache) as saved:
            feats = {k[2:]: saved[k] for k in saved.files if k.startswith("f_")}
            nonface_feats = {k[2:]: saved[k] for k in saved.files if k.startswith("n_")} or None
    else:
        feats = compute_features(accel, rset.crops, epsilon)
        nonface = measure.load_nonface_crops(args.val)
        nonface_feats = compute_features(accel, nonface, epsilon) if len(nonface) else None
        np.savez(cache, **{f"f_{k}": v for k, v in feats.items()}, **{f"n_{k}": v for k, v in (nonface_feats or {}).items()})
    folds = ranking.identity_split(rset.identities, folds=2, seed=args.seed)
    results = evaluate_candidates(feats, rset, folds, nonface_feats)
    rows = {name: r["held_out"] for name, r in results.items()}
    table = ranking.format_table(rows, ranking.COLUMNS + ("face>bg",))
    n_faces = len(set(rset.face.tolist()))
    header = (
        f"Candidate scores on {n_faces} held-out faces ({len(set(rset.identities))} identities) x 8 degradations x 3 levels; "
        f"model: {label}. Weights chosen on one identity-disjoint half, fractions measured on the other, "
        f"both ways (2-fold CV by identity), pooled. face>bg: fraction of (clean face, background window "
        f"of the same frames) pairs with the face above (a detector false positive should score low)."
    )
    print(header)
    print(table)
    for name, r in results.items():
        if r["folds"][0]["params"]:
            print(f"  {name}: params per fold {[f['params'] for f in r['folds']]}; on all faces {r['final_params']} "
                  f"(in-sample min {r['final_in_sample']['min']:.2f}, all {r['final_in_sample']['all']:.2f})")
    shipped = shipped_default_fractions(feats, rset)
    print(f"  shipped default constants {shipped['params']} on all faces (in-sample): "
          + ", ".join(f"{k} {v:.2f}" for k, v in shipped["fractions"].items()))
    results["shipped default (in-sample)"] = shipped
    (out / "candidates.json").write_text(json.dumps({"model": label, "n_faces": n_faces, "results": results}, indent=2))
    (out / "candidates.md").write_text(header + "\n\n" + table + "\n")
    print(f"wrote {out / 'candidates.json'} and candidates.md in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
