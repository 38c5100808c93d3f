"""The error-versus-reject experiment: embed, compare, score, reject, plot, tabulate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from snapseal.eval.dataset import EvalSet
from snapseal.eval.embedding_cache import CachedEmbedder
from snapseal.eval.erc import ErcResult, compute_erc, oracle_quality
from snapseal.eval.methods import MethodSet, ProbeBatch
from snapseal.eval.report import fmt, markdown_table, plot_erc

# The paper's two operating points, plus 0.1: on a small offline set (a few hundred genuine
# comparisons) FNMR 0.01 rests on a handful of errors and 0.001 on none; 0.1 resolves the curve.
INITIAL_FNMRS = (0.1, 0.01, 0.001)


@dataclass
class Comparisons:
    embedder: str
    genuine: np.ndarray  # one per probe: distance to its own identity's reference
    impostor: np.ndarray  # every probe against every other identity's reference
    probe_to_all: np.ndarray  # probes x identities distance matrix (rank-1 identification)
    identities: list[str]


def compare(eval_set: EvalSet, embedder: CachedEmbedder, progress: bool = True) -> Comparisons:
    identities = sorted(eval_set.references)
    refs = [eval_set.references[i] for i in identities]
    ref_rows = embedder.embed([r.recognizer_image for r in refs], [r.recognizer_box for r in refs],
                              "references" if progress else None)
    probe_rows = embedder.embed([p.recognizer_image for p in eval_set.probes],
                                [p.recognizer_box for p in eval_set.probes], "probes" if progress else None)
    embedder.save()
    matrix = np.linalg.norm(probe_rows[:, None, :].astype(np.float64) - ref_rows[None, :, :], axis=2)
    column = {identity: j for j, identity in enumerate(identities)}
    own = np.array([column[p.identity] for p in eval_set.probes])
    genuine = matrix[np.arange(len(own)), own]
    mask = np.ones_like(matrix, dtype=bool)
    mask[np.arange(len(own)), own] = False
    return Comparisons(embedder.name, genuine, matrix[mask], matrix, identities)


def probe_batch(eval_set: EvalSet) -> ProbeBatch:
    probes = eval_set.probes
    return ProbeBatch(
        crops=np.stack([p.crop for p in probes]),
        face_area_px=np.array([p.face_area_px for p in probes]),
        on_edge=np.array([p.on_edge for p in probes]),
        detector_confidence=np.array([p.confidence for p in probes]),
        keys=tuple(p.key for p in probes),
    )


@dataclass
class ErcExperiment:
    eval_set: EvalSet
    comparisons: list[Comparisons]
    method_families: dict[str, str]
    scores: dict[str, np.ndarray]  # method -> one score per probe
    results: dict[tuple[str, str, float], ErcResult] = field(default_factory=dict)  # (embedder, method, fnmr)
    missing: list[str] = field(default_factory=list)


def score_probes(eval_set: EvalSet, methods: MethodSet, progress: bool = True) -> dict[str, np.ndarray]:
    batch = probe_batch(eval_set)
    scores = {}
    items = methods.methods
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="quality methods", unit="method")
    for method in items:
        values = np.asarray(method.score(batch), np.float64)
        if values.shape != (len(eval_set.probes),) or not np.all(np.isfinite(values)):
            bad = int(np.sum(~np.isfinite(values))) if values.shape == (len(eval_set.probes),) else -1
            methods.missing.append(f"{method.name}: returned {values.shape} scores with {bad} non-finite; left out")
            continue
        scores[method.name] = values
    return scores


def run_erc(eval_set: EvalSet, embedders: Sequence[CachedEmbedder], methods: MethodSet,
            initial_fnmrs: Sequence[float] = INITIAL_FNMRS, progress: bool = True) -> ErcExperiment:
    comparisons = [compare(eval_set, embedder, progress) for embedder in embedders]
    scores = score_probes(eval_set, methods, progress)
    families = {m.name: m.family for m in methods.methods if m.name in scores}
    experiment = ErcExperiment(eval_set, comparisons, families, scores, missing=list(methods.missing))
    for comparison in comparisons:
        for initial in initial_fnmrs:
            for name, values in scores.items():
                experiment.results[(comparison.embedder, name, initial)] = compute_erc(
                    name, comparison.genuine, values, initial, comparison.impostor)
            experiment.results[(comparison.embedder, "PERFECT (oracle)", initial)] = compute_erc(
                "PERFECT (oracle)", comparison.genuine, oracle_quality(comparison.genuine), initial, comparison.impostor)
    experiment.method_families["PERFECT (oracle)"] = "oracle"
    return experiment


def degradation_ranking(eval_set: EvalSet, scores: dict[str, np.ndarray], reference_scores: dict[str, np.ndarray]
                        ) -> dict[str, dict[str, float]]:
    """Per method and degradation family: the share of degraded probes scored BELOW the clean
    reference they were made from (1.0 = the method always prefers the clean face)."""
    identities = sorted(eval_set.references)
    column = {identity: j for j, identity in enumerate(identities)}
    origin_of_reference = {i: eval_set.references[i].key.split("|")[0] for i in identities}
    table: dict[str, dict[str, float]] = {}
    for name, values in scores.items():
        per_family: dict[str, list[float]] = {}
        for probe, value in zip(eval_set.probes, values):
            family = probe.condition.split("-")[0]
            if probe.key.split("|")[0] != origin_of_reference[probe.identity] or family in ("clean", "video", "folder"):
                continue
            reference_value = reference_scores[name][column[probe.identity]]
            # a tie counts one half: a score that cannot tell the two apart is at chance
            per_family.setdefault(family, []).append(1.0 if value < reference_value else 0.5 if value == reference_value else 0.0)
        table[name] = {family: float(np.mean(right)) for family, right in sorted(per_family.items())}
        everything = [v for right in per_family.values() for v in right]
        table[name]["all"] = float(np.mean(everything)) if everything else float("nan")
        table[name]["identity share"] = identity_share(values, [p.identity for p in eval_set.probes])
    return table


def identity_share(scores: np.ndarray, identities: list[str]) -> float:
    """How much of a score's spread (its ranks' variance) is WHO the face is, not how degraded:
    eta^2 of the ranks grouped by identity. Near 1: the score mostly tells faces apart, so a
    global threshold rejects people rather than bad crops (an ERC ranks across people; frame
    selection only within one)."""
    ranks = np.argsort(np.argsort(np.asarray(scores, np.float64), kind="stable"), kind="stable").astype(np.float64)
    groups: dict[str, list[float]] = {}
    for rank, identity in zip(ranks, identities):
        groups.setdefault(identity, []).append(rank)
    total = float(np.sum((ranks - ranks.mean()) ** 2))
    between = sum(len(g) * (np.mean(g) - ranks.mean()) ** 2 for g in groups.values())
    return float(between / total) if total > 0 else float("nan")


def erc_markdown(experiment: ErcExperiment, image_dir: Path, image_link_prefix: str, tag: str) -> str:
    """Tables + plots for one experiment; returns the markdown."""
    comparisons = experiment.comparisons
    fnmrs = sorted({key[2] for key in experiment.results}, reverse=True)
    methods = list(experiment.scores) + ["PERFECT (oracle)"]
    lines = []
    # operating points
    rows = []
    for comparison in comparisons:
        for initial in fnmrs:
            result = experiment.results[(comparison.embedder, "random", initial)] if "random" in experiment.scores \
                else experiment.results[(comparison.embedder, "PERFECT (oracle)", initial)]
            errors = int(round(result.achieved_initial_fnmr * len(comparison.genuine)))
            rows.append([comparison.embedder, f"{initial:g}", fmt(result.threshold), fmt(result.achieved_initial_fnmr),
                         str(errors), fmt(result.fmr_at_threshold), str(len(comparison.genuine)),
                         str(len(comparison.impostor))])
    lines.append("Operating points (threshold fixed before rejection):\n")
    lines.append(markdown_table(["embedder", "initial FNMR asked", "threshold (L2 dist.)", "FNMR at r=0",
                                 "false non-matches", "FMR at threshold", "genuine", "impostor"], rows))
    # rank-1 identification, for context on how hard the set is
    rows = []
    for comparison in comparisons:
        identities = comparison.identities
        own = np.array([identities.index(p.identity) for p in experiment.eval_set.probes])
        rank1 = float(np.mean(np.argmin(comparison.probe_to_all, axis=1) == own))
        rows.append([comparison.embedder, fmt(float(np.median(comparison.genuine)), 3),
                     fmt(float(np.median(comparison.impostor)), 3), fmt(rank1, 3)])
    lines.append("\nHow hard the set is for each embedder:\n")
    lines.append(markdown_table(["embedder", "median genuine dist.", "median impostor dist.",
                                 "rank-1 identification"], rows))
    # the main table
    header = ["method", "family"] + [f"{c.embedder} @ FNMR {f:g}" for c in comparisons for f in fnmrs]
    rows = []
    for name in methods:
        cells = [name, experiment.method_families.get(name, "")]
        for comparison in comparisons:
            for initial in fnmrs:
                if initial * len(comparison.genuine) < 1.0:
                    cells.append("n/a")  # fewer comparisons than one error at this FNMR
                else:
                    cells.append(fmt(experiment.results[(comparison.embedder, name, initial)].area_to_30 * 1000, 3))
        rows.append(cells)
    lines.append("\nArea under the ERC from 0 to 30 % rejection (x 1000; lower is better; a flat curve at the "
                 "initial FNMR f gives 300 f; n/a = fewer genuine comparisons than 1/f, i.e. not one error to reject):\n")
    lines.append(markdown_table(header, rows))
    # plots
    for comparison in comparisons:
        for initial in fnmrs:
            if initial * len(comparison.genuine) < 1.0:
                continue
            file_name = f"erc_{tag}_{comparison.embedder}_fnmr{initial:g}.png"
            curves = [(name, experiment.method_families.get(name, ""),
                       experiment.results[(comparison.embedder, name, initial)].reject_fractions,
                       experiment.results[(comparison.embedder, name, initial)].fnmr) for name in methods]
            plot_erc(image_dir / file_name,
                     f"ERC, {experiment.eval_set.name} set, {comparison.embedder} embedder, initial FNMR {initial:g}",
                     curves)
            lines.append(f"\n![ERC {comparison.embedder} {initial:g}]({image_link_prefix}/{file_name})\n")
    return "".join(lines)


def failures_by_family(experiment: ErcExperiment, initial_fnmr: float = 0.1, methods: list[str] | None = None
                       ) -> tuple[list[str], list[list[str]]]:
    """Which probes the recognizer fails on, and where each method ranks them: per probe family,
    the share of false non-matches at the threshold for ``initial_fnmr`` (per embedder), and the
    mean percentile of each method's score (0 = rejected first). A good quality score puts the
    families that fail at low percentiles."""
    from snapseal.eval.report import fmt

    families = [p.condition.split("-")[0] for p in experiment.eval_set.probes]
    names = sorted(set(families))
    methods = methods or list(experiment.scores)
    percentiles = {}
    for name in methods:
        values = experiment.scores[name]
        ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
        percentiles[name] = 100.0 * ranks / max(len(values) - 1, 1)
    header = ["probe family", "probes"] + [f"fails ({c.embedder} @ {initial_fnmr:g})" for c in experiment.comparisons] + [
        f"pct: {m.split(',')[0].replace('VAE ', '')}{' 4-bit' if '4-bit' in m else ''}" for m in methods]
    rows = []
    for family in names:
        mask = np.array([f == family for f in families])
        cells = [family, str(int(mask.sum()))]
        for comparison in experiment.comparisons:
            threshold = experiment.results[(comparison.embedder, "PERFECT (oracle)", initial_fnmr)].threshold
            cells.append(f"{100 * np.mean(comparison.genuine[mask] > threshold):.0f} %")
        cells += [fmt(float(np.mean(percentiles[m][mask])), 0) for m in methods]
        rows.append(cells)
    return header, rows
