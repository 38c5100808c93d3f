"""The quality model's measurements (size, quantized vs float, degradation ranking, speed), printed and written to build/measure/quality.{json,md}.

    python -m snapseal.eval.model.measure [--bundle DIR] [--float-checkpoint PT] [--val-dir DIR]
    make measure

1. parameters, weight memory at the chosen bits, training time (from the bundle's manifest);
2. quantized (bundle, emulate backend) vs float model: Spearman rho of scores on held-out crops;
3. degradation ranking on held-out real faces (identity-disjoint from training): fraction of
   correctly ordered (clean, degraded) pairs per degradation for the paper's score, the default
   score, Laplacian variance, BRISQUE and NIQE side by side (NIQE left out, with the reason
   printed, when its model parameters are not extracted);
4. scoring speed, crops/s: emulate graph vs float model (and the cpu backend), one run, with
   ratios side by side.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.eval.model import degrade as dg
from snapseal.eval.model import ranking

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VAL_DIR = REPO_ROOT / "build" / "data" / "bootstrap"
DEFAULT_ASSETS_DIR = REPO_ROOT / "build" / "assets"
DEFAULT_OUT = REPO_ROOT / "build" / "measure"


# ---------------------------------------------------------------------------------------------
# Held-out faces as degradable regions


def load_val_regions(val_dir: str | Path = DEFAULT_VAL_DIR, assets_dir: str | Path = DEFAULT_ASSETS_DIR) -> tuple[list[dg.FaceRegion], list[str]]:
    """The validation faces (identity-disjoint from training) as clean regions with a margin.

    Re-cut from the source frame with the daemon's own crop geometry (``crop_transform`` of the
    variant the set was built with) over twice the crop's field of view, the crop being the
    centre half: blur and downscale act on real pixels before the final downscale and an
    off-centre crop shows the real surroundings. Falls back to the stored 128-px region (same
    framing as the crop; off-centre then repeats the border) when the frame is not at hand.
    """
    from snapseal.daemon.crop import crop_transform, warp_region
    from snapseal.daemon.types import Box, Detection

    path = Path(val_dir) / "val_sources.npz"
    if not path.is_file():
        raise SnapsealError(f"{path}: validation regions missing (run `make data`)")
    with np.load(path) as data:
        regions128 = data["regions"]
        frame_paths = [str(p) for p in data["frame_path"]]
        frame_index = data["frame_index"]
        boxes, landmarks = data["boxes"], data["landmarks"]
        identities = [str(i) for i in data["identity"]]
        variant = str(data["variant"])
    out: list[dg.FaceRegion] = []
    frames: dict[tuple[str, int], np.ndarray | None] = {}
    for i in range(len(regions128)):
        key = (frame_paths[i], int(frame_index[i]))
        if key not in frames:
            frames[key] = _read_frame(Path(assets_dir) / key[0], key[1])
        frame = frames[key]
        side = regions128[i].shape[0]
        if frame is None:
            out.append(dg.FaceRegion(regions128[i], (0.0, 0.0, float(side), float(side))))
            continue
        detection = Detection(Box(*[float(v) for v in boxes[i]]), np.asarray(landmarks[i], np.float32), 1.0)
        matrix = crop_transform(detection, variant, side).copy()
        margin = side / 2.0
        matrix[:, 2] += margin  # same scale, the crop window moved to the centre of a 2x canvas
        region = warp_region(frame, matrix, 2 * side)
        out.append(dg.FaceRegion(region, (margin, margin, margin + side, margin + side)))
    return out, identities


def _read_frame(path: Path, index: int) -> np.ndarray | None:
    import cv2

    if not path.is_file():
        return None
    if index < 0:
        return cv2.imread(str(path), cv2.IMREAD_COLOR)
    capture = cv2.VideoCapture(str(path))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        return frame if ok else None
    finally:
        capture.release()


def load_nonface_crops(
    val_dir: str | Path = DEFAULT_VAL_DIR, assets_dir: str | Path = DEFAULT_ASSETS_DIR, per_frame: int = 8, seed: int = 0
) -> np.ndarray:
    """Background windows of the validation frames, cropped like faces (a detector's false
    positives): N x 64 x 64 uint8. Windows overlapping a known face box are skipped."""
    from snapseal.daemon.crop import face_region, region_to_crop
    from snapseal.daemon.types import Box, Detection

    with np.load(Path(val_dir) / "val_sources.npz") as data:
        frame_paths = [str(p) for p in data["frame_path"]]
        frame_index = data["frame_index"]
        boxes = data["boxes"]
    rng = np.random.default_rng(seed)
    crops = []
    for key in sorted(set(zip(frame_paths, (int(i) for i in frame_index)))):
        frame = _read_frame(Path(assets_dir) / key[0], key[1])
        if frame is None:
            continue
        faces = boxes[[i for i, k in enumerate(zip(frame_paths, frame_index)) if (k[0], int(k[1])) == key]]
        sides = faces[:, 2] - faces[:, 0]
        h, w = frame.shape[:2]
        found, tries = 0, 0
        while found < per_frame and tries < 200:
            tries += 1
            side = float(rng.choice(sides)) * rng.uniform(0.8, 1.2)
            x1, y1 = rng.uniform(0, max(1.0, w - side)), rng.uniform(0, max(1.0, h - side))
            window = np.array([x1, y1, x1 + side, y1 + side])
            if _overlaps_any(window, faces):
                continue
            detection = Detection(Box(*window.tolist()), np.zeros((5, 2), np.float32), 1.0)
            crops.append(region_to_crop(face_region(frame, detection, "box")))
            found += 1
    return np.stack(crops).astype(np.uint8) if crops else np.zeros((0, 64, 64), np.uint8)


def _overlaps_any(window: np.ndarray, boxes: np.ndarray) -> bool:
    # the crop is the window grown by the crop margin: keep well clear of every face
    grow = 0.5 * (window[2] - window[0])
    wx1, wy1, wx2, wy2 = window[0] - grow, window[1] - grow, window[2] + grow, window[3] + grow
    for bx1, by1, bx2, by2 in boxes:
        if wx1 < bx2 and bx1 < wx2 and wy1 < by2 and by1 < wy2:
            return True
    return False


def face_vs_nonface(scores_faces: np.ndarray, scores_nonfaces: np.ndarray) -> float:
    """Fraction of (clean face, background window) pairs where the face scores higher."""
    if len(scores_faces) == 0 or len(scores_nonfaces) == 0:
        return float("nan")
    diff = np.asarray(scores_faces, np.float64)[:, None] - np.asarray(scores_nonfaces, np.float64)[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def load_ranking_set(val_dir: str | Path | None = None, seed: int = 0, progress: bool = True) -> ranking.RankingSet:
    regions, identities = load_val_regions(val_dir or DEFAULT_VAL_DIR)
    return ranking.build_ranking_set(regions, identities, seed=seed, progress=progress)


# ---------------------------------------------------------------------------------------------
# Models


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", help="bundle directory (default: the committed default bundle)")
    parser.add_argument("--backend", default="emulate", choices=("emulate", "cpu"), help="bundle backend (default %(default)s)")
    parser.add_argument("--checkpoint", help="score with a torch checkpoint instead of a bundle (research)")
    parser.add_argument("--val", "--val-dir", dest="val", default=str(DEFAULT_VAL_DIR), help="bootstrap data dir with val_sources.npz")
    parser.add_argument("--seed", type=int, default=0, help="degradation seed (default %(default)s)")


def open_model(args: argparse.Namespace):
    """(accelerator, epsilon table, label) for --checkpoint or --bundle/--backend."""
    from snapseal.daemon.accel import make_accelerator
    from snapseal.daemon.bundle import load_bundle
    from snapseal.daemon.scoring.likelihood import epsilon_table

    if getattr(args, "checkpoint", None):
        from snapseal.eval.model.score_candidates import TorchAccelerator

        accel = TorchAccelerator(args.checkpoint)
        return accel, epsilon_table(accel.model.cfg.latent_dim), f"checkpoint {args.checkpoint}"
    bundle = load_bundle(args.bundle)
    return make_accelerator(args.backend, bundle), bundle.epsilon, f"bundle {bundle.model_id} ({args.backend})"


# ---------------------------------------------------------------------------------------------
# The report


def _batched(fn, crops: np.ndarray, desc: str, batch: int = 64) -> np.ndarray:
    from tqdm import tqdm

    parts = [fn(crops[i : i + batch]) for i in tqdm(range(0, len(crops), batch), desc=desc, leave=False)]
    return np.concatenate(parts) if parts else np.zeros(0)


def model_facts(bundle, float_checkpoint: Path | None) -> dict:
    from snapseal.quantize.model import VAEConfig, model_size

    cfg = VAEConfig.from_dict(bundle.manifest["architecture"])
    size = model_size(cfg)
    training = bundle.manifest.get("training") or {}
    facts = {
        "model_id": bundle.model_id,
        "weight_params": size.weight_params,
        "bias_and_norm_params": size.bias_and_norm_params,
        "weight_bits": cfg.weight_bits,
        "act_bits": cfg.act_bits,
        "weight_memory_kib": round(size.weight_kib, 1),
        "threshold_memory_kib_estimate": round(size.threshold_kib(), 1),
        "qat_train_seconds": training.get("train_seconds"),
        "qat_epochs": training.get("epochs"),
        "objective": training.get("objective"),
        "training_data": (training.get("hyper") or {}).get("data"),
    }
    if float_checkpoint is not None and float_checkpoint.is_file():
        from snapseal.quantize.train import load_checkpoint

        ckpt = load_checkpoint(float_checkpoint)
        facts["float_train_seconds"] = round(ckpt.train_seconds, 1)
        facts["float_epochs"] = ckpt.epoch
    elif "float_train_seconds" in (bundle.manifest.get("measured") or {}):
        facts["float_train_seconds"] = bundle.manifest["measured"]["float_train_seconds"]  # from make bundle
    return facts


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _speed(fn, crops: np.ndarray, repeats: int = 1) -> float:
    fn(crops[:4])  # warm-up (graph load, sessions)
    started = time.perf_counter()
    for _ in range(repeats):
        fn(crops)
    return repeats * len(crops) / (time.perf_counter() - started)


def _provenance(bundle, args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """(float twin, QAT checkpoint) the bundle was made from: the arguments, else what the
    manifest's ``training`` section names (paths relative to the repository)."""
    from snapseal.quantize.bundle_writer import training_checkpoint

    hyper = (bundle.manifest.get("training") or {}).get("hyper") or {}
    flt = args.float_checkpoint or hyper.get("init_from")

    def resolve(path: str | None) -> Path | None:
        if not path:
            return None
        path = Path(path)
        return path if path.is_absolute() else REPO_ROOT / path

    qat = resolve(args.qat_checkpoint) if args.qat_checkpoint else training_checkpoint(bundle.manifest, REPO_ROOT)
    return resolve(flt), qat


def run(args: argparse.Namespace) -> dict:
    from snapseal.daemon.accel import make_accelerator
    from snapseal.daemon.bundle import load_bundle
    from snapseal.daemon.scoring.complexity import ComplexityParams, ComplexityScorer
    from snapseal.daemon.scoring.paper import PaperScorer
    from snapseal.eval.model import baselines

    bundle = load_bundle(args.bundle)
    emulate = make_accelerator("emulate", bundle)
    params = ComplexityParams.from_manifest(bundle.scorers.get("complexity"), str(bundle.path))
    scorers = {
        "paper (log RP, L=10)": PaperScorer(emulate, bundle.epsilon, bundle.model_id),
        "default (complexity)": ComplexityScorer(emulate, bundle.model_id, params),
    }
    float_ckpt, qat_ckpt = _provenance(bundle, args)
    skipped_lineage = None
    from snapseal.quantize.bundle_writer import checkpoint_mismatch

    # A retrain (`make bundle` on another CPU, or with other data) writes the same paths: only
    # the bundle's own run measures what quantization changes. The float twin comes from the
    # same `make bundle` run as the QAT checkpoint, so it is trusted exactly when that one is.
    lineage = None if qat_ckpt is None or not qat_ckpt.is_file() else checkpoint_mismatch(qat_ckpt, bundle.manifest)
    if lineage and not args.qat_checkpoint and not args.float_checkpoint:
        print(f"\n{qat_ckpt} is not the bundle's training run ({lineage}): quantized vs float is skipped "
              f"(pass --qat-checkpoint/--float-checkpoint to force it)")
        skipped_lineage = f"{qat_ckpt}: {lineage}"
        qat_ckpt = float_ckpt = None
    report: dict = {"bundle": str(bundle.path), "model": model_facts(bundle, float_ckpt), "scorer_params": params.to_manifest()}
    if skipped_lineage:
        report["quantized_vs_float_skipped"] = skipped_lineage

    print(f"1. model {bundle.model_id}: {report['model']['weight_params']:,} weights at {report['model']['weight_bits']} bits "
          f"= {report['model']['weight_memory_kib']} KiB; QAT training {report['model']['qat_train_seconds']} s"
          + (f", float twin {report['model'].get('float_train_seconds')} s" if "float_train_seconds" in report["model"] else ""))

    rset = load_ranking_set(args.val, seed=args.seed)
    nonface = load_nonface_crops(args.val, seed=args.seed)
    scores = {name: _batched(s.score_batch, rset.crops, name) for name, s in scorers.items()}
    nonface_scores = {name: s.score_batch(nonface) if len(nonface) else np.zeros(0) for name, s in scorers.items()}
    scores["Laplacian variance"] = baselines.laplacian_variance(rset.crops)
    nonface_scores["Laplacian variance"] = baselines.laplacian_variance(nonface) if len(nonface) else np.zeros(0)
    scores["BRISQUE (negated)"] = _batched(baselines.brisque, rset.crops, "BRISQUE")
    nonface_scores["BRISQUE (negated)"] = baselines.brisque(nonface) if len(nonface) else np.zeros(0)
    if "niqe" in baselines.BASELINES:
        scores["NIQE (negated)"] = _batched(baselines.niqe, rset.crops, "NIQE")
        nonface_scores["NIQE (negated)"] = baselines.niqe(nonface) if len(nonface) else np.zeros(0)
    else:
        print(f"   (NIQE left out: {baselines.UNAVAILABLE.get('niqe', 'not in BASELINES')})")
    clean = rset.kind == ranking.CLEAN
    rows = {}
    for name, s in scores.items():
        rows[name] = ranking.pair_fractions(s, rset)
        rows[name]["face>bg"] = face_vs_nonface(s[clean], nonface_scores[name])
    n_faces, n_ids = int(clean.sum()), len(set(rset.identities))
    table = ranking.format_table(rows, ranking.COLUMNS + ("face>bg",))
    report["ranking"] = {"faces": n_faces, "identities": n_ids, "background_windows": int(len(nonface)), "fractions": rows}
    print(f"\n3. degradation ranking: {n_faces} held-out faces ({n_ids} identities) x 8 degradations x 3 levels "
          f"(fraction of (clean, degraded) pairs with clean above; face>bg: clean face vs {len(nonface)} background windows)")
    print(table)

    from snapseal.eval.model.score_candidates import TorchAccelerator

    references = {}
    if qat_ckpt is not None and qat_ckpt.is_file():
        # the same trained weights with every quantizer removed: what quantization alone changes
        references["QAT weights run in float"] = TorchAccelerator(qat_ckpt, bundle.log_sigma_floor, as_float=True)
    if float_ckpt is not None and float_ckpt.is_file():
        # the float twin QAT started from (a separately trained model)
        references["float twin checkpoint"] = TorchAccelerator(float_ckpt, bundle.log_sigma_floor)
    quant_float: dict = {}
    print(f"\n2. quantized (bundle, emulate) vs float, Spearman rho over {len(rset.crops)} held-out crops "
          f"(clean + degraded) / the {n_faces} clean ones:")
    for ref_name, ref_accel in references.items():
        ref_scorers = {
            "paper (log RP, L=10)": PaperScorer(ref_accel, bundle.epsilon, "float"),
            "default (complexity)": ComplexityScorer(ref_accel, "float", params),
        }
        for name, s in ref_scorers.items():
            ref_scores = _batched(s.score_batch, rset.crops, f"{ref_name}: {name}")
            rho = {"all crops": _spearman(scores[name], ref_scores), "clean crops": _spearman(scores[name][clean], ref_scores[clean])}
            quant_float[f"{name} vs {ref_name}"] = rho
            print(f"   {name} vs {ref_name}: {rho['all crops']:.3f} / {rho['clean crops']:.3f}")
    report["quantized_vs_float_spearman"] = quant_float
    float_accel = references.get("float twin checkpoint") or references.get("QAT weights run in float")
    float_scorers = {"default (complexity)": ComplexityScorer(float_accel, "float", params)} if float_accel else {}

    speed_crops = rset.crops[: min(len(rset.crops), args.speed_crops)]
    speeds = {
        "emulate graph: forward_at_mean": _speed(emulate.forward_at_mean, speed_crops),
        "emulate: default score": _speed(scorers["default (complexity)"].score_batch, speed_crops),
        "emulate: paper score (L=10)": _speed(scorers["paper (log RP, L=10)"].score_batch, speed_crops[:64]),
    }
    try:
        cpu = make_accelerator("cpu", bundle)
        speeds["cpu backend: forward_at_mean"] = _speed(cpu.forward_at_mean, speed_crops)
        speeds["cpu backend: default score"] = _speed(ComplexityScorer(cpu, bundle.model_id, params).score_batch, speed_crops)
    except Exception as exc:  # the cpu backend is optional for this report
        print(f"   (cpu backend skipped: {exc})")
    if float_accel is not None:
        speeds["float model (torch, 1 thread): forward_at_mean"] = _speed(float_accel.forward_at_mean, speed_crops)
        speeds["float model: default score"] = _speed(float_scorers["default (complexity)"].score_batch, speed_crops)
    base = speeds["emulate graph: forward_at_mean"]
    report["speed_crops_per_s"] = {k: round(v, 1) for k, v in speeds.items()}
    print(f"\n4. scoring speed on {len(speed_crops)} crops, one run (crops/s; ratio to the emulate graph):")
    for name, v in speeds.items():
        print(f"   {name:50s} {v:8.1f}   x{v / base:.2f}")
    return report


def to_markdown(report: dict, command: str) -> str:
    m = report["model"]
    lines = [f"# Quality measurements (`{command}`)", "", f"Bundle `{report['bundle']}`, model `{m['model_id']}`.", ""]
    lines += ["## Model", "", "| what | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in m.items()]
    if "quantized_vs_float_spearman" in report:
        lines += ["", "## Quantized (emulate) vs float: Spearman rho", "", "| score vs reference | all held-out crops | clean crops |", "|---|---:|---:|"]
        lines += [f"| {k} | {v['all crops']:.3f} | {v['clean crops']:.3f} |" for k, v in report["quantized_vs_float_spearman"].items()]
    if report.get("quantized_vs_float_skipped"):
        lines += ["", f"Quantized vs float skipped: {report['quantized_vs_float_skipped']}"]
    r = report["ranking"]
    lines += ["", f"## Degradation ranking ({r['faces']} held-out faces, {r['identities']} identities, 3 levels each; "
              f"face>bg vs {r['background_windows']} background windows)", "",
              ranking.format_table(r["fractions"], ranking.COLUMNS + ("face>bg",))]
    lines += ["", "## Speed (crops/s, one run)", "", "| path | crops/s |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["speed_crops_per_s"].items()]
    lines += ["", "Default score constants: `" + json.dumps(report["scorer_params"]) + "`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import sys

    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.model.measure", description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", help="bundle directory (default: the committed default bundle)")
    parser.add_argument("--float-checkpoint", help="the float twin QAT started from (default: as the bundle's manifest says; skipped if missing)")
    parser.add_argument("--qat-checkpoint", help="the QAT checkpoint the bundle was exported from, run in float "
                        "(default: as the bundle's manifest says; skipped if missing)")
    parser.add_argument("--val", "--val-dir", dest="val", default=str(DEFAULT_VAL_DIR), help="bootstrap data dir (val_sources.npz)")
    parser.add_argument("--seed", type=int, default=0, help="degradation seed")
    parser.add_argument("--speed-crops", type=int, default=256, help="crops per speed measurement")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory for quality.json / quality.md")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        report = run(args)
    except SnapsealError as error:
        print(f"measure: error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m snapseal.eval.model.measure" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(argv if argv is not None else sys.argv[1:]))
    (out / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "quality.md").write_text(to_markdown(report, command))
    print(f"\nwrote {out / 'quality.json'} and {out / 'quality.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
