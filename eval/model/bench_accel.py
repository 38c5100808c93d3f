"""Benchmark and agreement figures of a bundle's backends (``make bench-accel``).

    python -m snapseal.eval.model.bench_accel --bundle bundles/default \
        --crops build/data/bootstrap/val.npz [--float-checkpoint build/train/float/last.pt]

The crops are the held-out set plus the degradation suite's copies of each (a range of
quality to rank). Prints one JSON object: crops/s of the emulate and cpu backends (forward at mean, and the
paper's L=10 log RP), Spearman rho of cpu vs emulate log RP, of the single pass at mu vs the
L=10 reference, and (with a float checkpoint) of the quantized bundle vs the float twin.
Speeds are measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from snapseal.daemon.accel import make_accelerator
from snapseal.daemon.bundle import load_bundle
from snapseal.daemon.scoring.likelihood import log_likelihood_at_mean, log_rp


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _timed(fn, *args) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def measure(bundle_dir: Path | None, crops: np.ndarray, float_checkpoint: Path | None = None, threads: int = 1) -> dict[str, Any]:
    bundle = load_bundle(bundle_dir)
    eps = bundle.epsilon
    result: dict[str, Any] = {"bundle": str(bundle.path), "model_id": bundle.model_id, "crops": int(len(crops)), "threads": threads}
    scores = {}
    for name in ("emulate", "cpu"):
        acc = make_accelerator(name, bundle, threads=threads)
        acc.forward_at_mean(crops[:2])  # build sessions outside the timing
        acc.decode(np.zeros((2, bundle.latent_dim), np.float32))
        (latent, dist), t_fam = _timed(acc.forward_at_mean, crops)
        rp, t_rp = _timed(lambda: log_rp(crops, acc.encode(crops), acc.decode, eps))  # noqa: B023 (called at once)
        scores[name] = rp
        scores[f"{name}_at_mean"] = log_likelihood_at_mean(crops, dist)
        result[f"{name}_forward_at_mean_crops_per_s"] = round(len(crops) / t_fam, 1)
        result[f"{name}_log_rp_L{len(eps)}_crops_per_s"] = round(len(crops) / t_rp, 1)
    result["spearman_cpu_vs_emulate_log_rp"] = round(spearman(scores["cpu"], scores["emulate"]), 4)
    result["spearman_at_mean_vs_log_rp_emulate"] = round(spearman(scores["emulate_at_mean"], scores["emulate"]), 4)
    if float_checkpoint is not None:
        import torch

        from snapseal.quantize.reference import reference_log_rp
        from snapseal.quantize.train import load_model

        torch.set_num_threads(threads)
        float_model = load_model(float_checkpoint)
        float_scores = np.concatenate(
            [reference_log_rp(float_model, crops[i : i + 128], eps, bundle.log_sigma_floor) for i in range(0, len(crops), 128)]
        )
        result["spearman_quantized_vs_float_log_rp"] = round(spearman(scores["emulate"], float_scores), 4)
        result["float_checkpoint"] = str(float_checkpoint)
    return result


def heldout_crops(spec: str, with_degraded: bool = True) -> np.ndarray:
    """Held-out crops plus, when the degradation suite is there, every degraded copy of each
    (8 kinds x 3 levels): a quality range to rank, not just clean faces."""
    from snapseal.quantize.train import load_crops

    crops = load_crops(spec)
    if not with_degraded:
        return crops
    try:
        from snapseal.eval.model.degrade import degrade_all, region_from_crop
    except ImportError:
        return crops
    extra = [img for crop in crops for img in degrade_all(region_from_crop(crop)).values()]
    return np.concatenate([crops, np.stack(extra).astype(np.uint8)])


def main(argv: list[str] | None = None) -> int:
    from snapseal.quantize.train import synthetic_crops

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default=None, help="bundle directory (default: the committed one)")
    p.add_argument("--crops", help="crops (.npz/.npy); default 200 synthetic ones")
    p.add_argument("--float-checkpoint")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clean-only", action="store_true", help="do not add degraded copies of the crops")
    args = p.parse_args(argv)
    crops = heldout_crops(args.crops, not args.clean_only) if args.crops else synthetic_crops(200)
    result = measure(Path(args.bundle) if args.bundle else None, crops, Path(args.float_checkpoint) if args.float_checkpoint else None, args.threads)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
