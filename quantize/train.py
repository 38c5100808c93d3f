"""Train the VAE (``snapseal-train`` / ``make train DATA=...``).

Paper defaults: Adam, lr 0.005, batch 144, 10 epochs, KL warm-up. Seeded and reproducible for a
given thread count: the data order of epoch e is a permutation drawn from (seed, e), the torch
RNG state is saved in every checkpoint, and ``--resume`` continues from the last epoch boundary.

    snapseal-train --data build/data/bootstrap/train.npz --val build/data/bootstrap/val.npz \
        --out build/train/qat --epochs 10
    snapseal-train ... --float                     # the float twin
    snapseal-train ... --init-from build/train/float/last.pt   # QAT starting from float weights

A checkpoint is ``{out}/epoch_NNN.pt`` plus ``{out}/last.pt`` (a copy of the newest).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snapseal.daemon.errors import SnapsealError
from snapseal.quantize.model import VAE, VAEConfig, quantizer_state, restore_quantizer_state
from snapseal.quantize.objectives import OBJECTIVES, TrainStep, get_objective, is_finite

CHECKPOINT_FORMAT = "snapseal-vae-checkpoint"
CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Data


def _crops_from_array(arr: np.ndarray, source: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.shape[1:] != (64, 64) or arr.dtype != np.uint8:
        raise SnapsealError(f"{source}: expected N x 64 x 64 uint8 crops, got {arr.dtype} {arr.shape}")
    if len(arr) == 0:
        raise SnapsealError(f"{source}: no crops")
    return np.ascontiguousarray(arr)


def synthetic_crops(n: int, seed: int = 0) -> np.ndarray:
    """Smooth face-like blobs for tests (no real data needed): N x 64 x 64 uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32) / 63.0
    out = np.empty((n, 64, 64), dtype=np.uint8)
    for i in range(n):
        cx, cy, r = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), rng.uniform(0.25, 0.4)
        face = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
        eyes = sum(np.exp(-(((xx - cx + dx) ** 2 + (yy - cy + 0.1) ** 2) / 0.002)) for dx in (-0.12, 0.12))
        img = 40 + 170 * face - 80 * eyes + rng.normal(0, 4, (64, 64))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def load_crops(spec: str) -> np.ndarray:
    """DATA spec -> N x 64 x 64 uint8 (see ``load_training_data``)."""
    return load_training_data(spec).crops


@dataclass(frozen=True)
class TrainingData:
    crops: np.ndarray  # N x 64 x 64 uint8
    regions: np.ndarray | None = None  # N x 128 x 128 uint8 face regions, for augmentation


def load_training_data(spec: str) -> TrainingData:
    """DATA spec -> crops (+ regions when the file has them).

    ``*.npz`` (key ``crops``, else its only array; ``regions`` if present, as the bootstrap set
    has), ``*.npy``, ``synthetic:N`` (tests), or anything the data loaders'
    ``snapseal.quantize.data.iter_crops(spec)`` accepts (CelebA folders, image folders, videos).
    """
    if spec.startswith("synthetic:"):
        return TrainingData(synthetic_crops(int(spec.split(":", 1)[1])))
    path = Path(spec)
    if path.suffix in (".npz", ".npy"):
        if not path.is_file():
            raise SnapsealError(f"{path}: no such data file")
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:  # zip/format errors from numpy
            raise SnapsealError(f"{path}: cannot read crops ({exc.__class__.__name__}: {exc})") from None
        if path.suffix == ".npy":
            return TrainingData(_crops_from_array(data, str(path)))
        with data:
            keys = list(data.keys())
            key = "crops" if "crops" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise SnapsealError(f"{path}: no 'crops' array (has {keys})")
            crops = _crops_from_array(data[key], str(path))
            regions = None
            if "regions" in keys:
                regions = np.asarray(data["regions"])
                if regions.dtype != np.uint8 or regions.ndim != 3 or len(regions) != len(crops):
                    raise SnapsealError(f"{path}: 'regions' must be N x S x S uint8 aligned with crops")
            return TrainingData(crops, regions)
    try:
        from snapseal.quantize.data import iter_crops  # quantize/data's loaders
    except ImportError as exc:
        raise SnapsealError(f"{spec}: not an .npz/.npy file and no crop loader available ({exc})") from None
    crops = []
    for crop in iter_crops(spec):
        crops.append(np.asarray(getattr(crop, "pixels", crop), dtype=np.uint8))
    if not crops:
        raise SnapsealError(f"{spec}: no crops found")
    return TrainingData(_crops_from_array(np.stack(crops), spec))


def epoch_crops(data: TrainingData, seed: int, epoch: int, augment_copies: int) -> np.ndarray:
    """The crops of one epoch: as stored, or `augment_copies` fresh augmentations of every face
    region (drawn from (seed, epoch), so an epoch is the same on every run and after resume)."""
    if augment_copies <= 0 or data.regions is None:
        return data.crops
    from snapseal.quantize.data.augment import augment_regions

    rng = np.random.default_rng([seed, epoch, 2])
    return augment_regions(np.repeat(data.regions, augment_copies, axis=0), rng)


# ---------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class Checkpoint:
    path: Path
    config: VAEConfig
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    epoch: int  # epochs completed
    step: int
    objective: str
    torch_rng: torch.Tensor | None
    train_seconds: float
    history: list[dict[str, float]]
    hyper: dict[str, Any]
    quantizer_state: dict[str, Any]


def save_checkpoint(path: Path, model: VAE, optimizer, epoch: int, step: int, objective: str, train_seconds: float, history, hyper) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": model.cfg.to_dict(),
        "model": model.state_dict(),
        "quantizer_state": quantizer_state(model),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": epoch,
        "step": step,
        "objective": objective,
        "torch_rng": torch.get_rng_state(),
        "train_seconds": train_seconds,
        "history": history,
        "hyper": hyper,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint; any problem -> SnapsealError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SnapsealError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SnapsealError(f"{path}: corrupt checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise SnapsealError(f"{path}: not a snapseal VAE checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise SnapsealError(f"{path}: checkpoint version {payload.get('version')}, expected {CHECKPOINT_VERSION}")
    try:
        cfg = VAEConfig.from_dict(payload["config"])
        return Checkpoint(
            path=path,
            config=cfg,
            model_state=payload["model"],
            optimizer_state=payload.get("optimizer"),
            epoch=int(payload["epoch"]),
            step=int(payload["step"]),
            objective=str(payload["objective"]),
            torch_rng=payload.get("torch_rng"),
            train_seconds=float(payload.get("train_seconds", 0.0)),
            history=list(payload.get("history", [])),
            hyper=dict(payload.get("hyper", {})),
            quantizer_state=dict(payload.get("quantizer_state", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapsealError(f"{path}: malformed checkpoint ({exc})") from None


def load_model(path: str | Path, cfg: VAEConfig | None = None) -> VAE:
    """A model in eval mode from a checkpoint (its own config unless cfg is given)."""
    ckpt = load_checkpoint(path)
    model = VAE(cfg or ckpt.config)
    _load_state(model, ckpt.model_state, ckpt.path, strict=cfg is None or cfg == ckpt.config)
    return model.eval()


def _load_state(model: VAE, state: dict, path: Path, strict: bool) -> None:
    """Load weights; a shape or name mismatch -> SnapsealError naming the file.

    strict=False allows float -> quantized (the quantizers' own parameters are missing then) but
    still refuses any conv/norm tensor that is missing or has the wrong shape.
    """
    own = model.state_dict()
    for name, tensor in state.items():
        if name in own and own[name].shape != tensor.shape:
            raise SnapsealError(f"{path}: tensor {name} has shape {tuple(tensor.shape)}, model expects {tuple(own[name].shape)}")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise SnapsealError(f"{path}: checkpoint does not match the model ({str(exc).splitlines()[0]})") from None
    core_missing = [m for m in missing if m.endswith(("weight", "bias", "running_mean", "running_var"))]
    if strict and (missing or unexpected):
        raise SnapsealError(f"{path}: checkpoint does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if core_missing:
        raise SnapsealError(f"{path}: checkpoint lacks layer tensors {core_missing[:3]}")


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainSettings:
    data: str
    out: Path
    val: str | None = None
    objective: str = "elbo"
    epochs: int = 10
    batch_size: int = 144
    lr: float = 0.005
    kl_warmup_epochs: float = 2.0
    grad_clip: float = 0.0  # 0 = off
    seed: int = 0
    threads: int = 1
    flip: bool = True  # random horizontal flips (seeded)
    augment_copies: int = 0  # >0 and the data has face regions: that many augmented crops per face per epoch
    resume: bool = False
    init_from: Path | None = None
    config: VAEConfig = VAEConfig()
    max_steps_per_epoch: int = 0  # 0 = all (short runs for tests)
    progress: bool = True


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_flips(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 1]).random(n) < 0.5


def batch_tensor(crops: np.ndarray, flips: np.ndarray | None = None) -> torch.Tensor:
    x = crops.copy()
    if flips is not None and flips.any():
        x[flips] = x[flips, :, ::-1]
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1)


@torch.no_grad()
def evaluate(model: VAE, crops: np.ndarray, batch_size: int = 256) -> dict[str, float]:
    """Mean negative log-likelihood per pixel at z = mu_z and mean KL on a crop set (eval mode)."""
    from snapseal.quantize.objectives import gaussian_log_likelihood, kl_to_standard_normal

    was_training = model.training
    model.eval()
    nll, kl = [], []
    for i in range(0, len(crops), batch_size):
        x = batch_tensor(crops[i : i + batch_size])
        mu_z, ls_z, out = model.forward_at_mean(x)
        nll.append(-gaussian_log_likelihood(x, out))
        kl.append(kl_to_standard_normal(mu_z, ls_z))
    model.train(was_training)
    n_pix = 64 * 64
    return {"val_nll_px": float(torch.cat(nll).mean()) / n_pix, "val_kl": float(torch.cat(kl).mean())}


def train(settings: TrainSettings) -> Path:
    """Run training; returns the path of the last checkpoint."""
    torch.set_num_threads(max(1, settings.threads))
    objective = get_objective(settings.objective)
    data = load_training_data(settings.data)
    n_train = len(data.crops) * (settings.augment_copies if settings.augment_copies > 0 and data.regions is not None else 1)
    val_crops = load_crops(settings.val) if settings.val else None
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(settings.seed)
    model = VAE(settings.config)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    start_epoch, step, train_seconds, history = 0, 0, 0.0, []
    last = out / "last.pt"
    if settings.resume and last.is_file():
        ckpt = load_checkpoint(last)
        if ckpt.config != settings.config:
            raise SnapsealError(f"{last}: checkpoint config {ckpt.config} differs from the requested {settings.config}")
        _load_state(model, ckpt.model_state, last, strict=True)
        restore_quantizer_state(model, ckpt.quantizer_state)
        if ckpt.optimizer_state is None:
            raise SnapsealError(f"{last}: checkpoint has no optimizer state to resume from")
        try:
            optimizer.load_state_dict(ckpt.optimizer_state)
        except (ValueError, KeyError) as exc:
            raise SnapsealError(f"{last}: optimizer state does not match ({exc})") from None
        if ckpt.torch_rng is not None:
            torch.set_rng_state(ckpt.torch_rng)
        start_epoch, step, train_seconds, history = ckpt.epoch, ckpt.step, ckpt.train_seconds, ckpt.history
    elif settings.init_from is not None:
        init = load_checkpoint(settings.init_from)
        _load_state(model, init.model_state, init.path, strict=False)

    steps_per_epoch = math.ceil(n_train / settings.batch_size)
    if settings.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, settings.max_steps_per_epoch)
    total_steps = steps_per_epoch * settings.epochs
    warmup = int(round(settings.kl_warmup_epochs * steps_per_epoch))
    hyper = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.__dict__.items() if k != "config"}

    from tqdm import tqdm

    for epoch in range(start_epoch, settings.epochs):
        model.train()
        crops = epoch_crops(data, settings.seed, epoch, settings.augment_copies)
        order = epoch_order(len(crops), settings.seed, epoch)
        flips = epoch_flips(len(crops), settings.seed, epoch) if settings.flip else None
        t0 = time.perf_counter()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{settings.epochs}", disable=not settings.progress, leave=False)
        sums: dict[str, float] = {}
        for b in bar:
            idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
            x = batch_tensor(crops[idx], flips[idx] if flips is not None else None)
            result = objective(model, x, TrainStep(step=step, total_steps=total_steps, kl_warmup_steps=warmup))
            if not is_finite(result):
                raise SnapsealError(
                    f"{out}: training diverged at epoch {epoch + 1} step {step} (loss {float(result.loss)}); try a lower --lr or --grad-clip"
                )
            optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            if settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            step += 1
            for k, v in {"loss": float(result.loss.detach()), **result.logs}.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix({k: f"{v:.4g}" for k, v in {"loss": float(result.loss.detach()), **result.logs}.items()})
        bar.close()
        train_seconds += time.perf_counter() - t0
        record = {"epoch": epoch + 1, "step": step, "train_seconds": round(train_seconds, 2)}
        record.update({k: v / steps_per_epoch for k, v in sums.items()})
        if val_crops is not None:
            record.update(evaluate(model, val_crops))
        history.append(record)
        print(json.dumps(record), flush=True)
        path = out / f"epoch_{epoch + 1:03d}.pt"
        save_checkpoint(path, model, optimizer, epoch + 1, step, settings.objective, train_seconds, history, hyper)
        shutil.copyfile(path, last)
    return last


# ---------------------------------------------------------------------------------------------
# CLI


def config_from_args(args: argparse.Namespace) -> VAEConfig:
    return VAEConfig(
        widths=tuple(int(w) for w in args.widths.split(",")),
        latent_dim=args.latent_dim,
        weight_bits=args.weight_bits,
        act_bits=args.act_bits,
        latent_bits=args.latent_bits,
        output_bits=args.output_bits,
        decoder_upsampling=args.decoder_upsampling,
        quantized=not args.float,
    )


def add_config_args(p: argparse.ArgumentParser) -> None:
    d = VAEConfig()
    p.add_argument("--widths", default=",".join(map(str, d.widths)), help="5 encoder widths (default %(default)s)")
    p.add_argument("--latent-dim", type=int, default=d.latent_dim)
    p.add_argument("--weight-bits", type=int, default=d.weight_bits)
    p.add_argument("--act-bits", type=int, default=d.act_bits)
    p.add_argument("--latent-bits", type=int, default=d.latent_bits)
    p.add_argument("--output-bits", type=int, default=d.output_bits)
    p.add_argument("--decoder-upsampling", choices=("deconv", "nearest"), default=d.decoder_upsampling)
    p.add_argument("--float", action="store_true", help="train the float twin (no quantization)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snapseal-train", description="Train the snapseal VAE (QAT with Brevitas, or the float twin).")
    p.add_argument("--data", required=True, help="crops: .npz/.npy, synthetic:N, or a spec for snapseal.quantize.data.iter_crops")
    p.add_argument("--val", help="validation crops (same forms as --data)")
    p.add_argument("--out", required=True, help="checkpoint directory")
    p.add_argument("--objective", default="elbo", help=f"training objective ({', '.join(sorted(OBJECTIVES))})")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=144)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--kl-warmup-epochs", type=float, default=2.0)
    p.add_argument("--grad-clip", type=float, default=0.0, help="clip the gradient norm (0 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    p.add_argument("--augment-copies", type=int, default=0,
                   help="with face regions in the data (the bootstrap .npz): K augmented crops per face per epoch")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init-from", help="start from this checkpoint's weights (e.g. the float twin, for QAT)")
    p.add_argument("--max-steps-per-epoch", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true")
    add_config_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = TrainSettings(
            data=args.data,
            val=args.val,
            out=Path(args.out),
            objective=args.objective,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            kl_warmup_epochs=args.kl_warmup_epochs,
            grad_clip=args.grad_clip,
            seed=args.seed,
            threads=args.threads,
            flip=not args.no_flip,
            augment_copies=args.augment_copies,
            resume=args.resume,
            init_from=Path(args.init_from) if args.init_from else None,
            config=config_from_args(args),
            max_steps_per_epoch=args.max_steps_per_epoch,
            progress=not args.no_progress,
        )
        last = train(settings)
    except SnapsealError as exc:
        print(f"snapseal-train: error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"checkpoint: {last}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
