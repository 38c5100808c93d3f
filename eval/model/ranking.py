"""The degradation-ranking test: does a score put a clean crop above its degraded copies?

For every held-out face region and every (degradation, level) of ``quantize.degrade``, one pair
(clean crop, degraded crop); a score orders the pair correctly when score(clean) >
score(degraded) (a tie counts one half). Reported per degradation: the fraction of correctly
ordered pairs over faces x 3 levels (target: >= 0.9 for each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snapseal.eval.model import degrade as dg

CLEAN = "clean"


@dataclass(frozen=True)
class RankingSet:
    """All crops of the test, clean ones first: crops[i] is face ``face[i]`` degraded by
    ``kind[i]`` at ``level[i]`` (kind "clean", level 0 for the clean crop)."""

    crops: np.ndarray  # M x 64 x 64 uint8
    face: np.ndarray  # M int: index into identities
    kind: np.ndarray  # M str
    level: np.ndarray  # M int
    identities: tuple[str, ...]  # per face

    def subset(self, faces: np.ndarray) -> "RankingSet":
        keep = np.isin(self.face, faces)
        return RankingSet(self.crops[keep], self.face[keep], self.kind[keep], self.level[keep], self.identities)


def build_ranking_set(
    regions: list[dg.FaceRegion], identities: list[str], seed: int = 0, progress: bool = True
) -> RankingSet:
    from tqdm import tqdm

    crops, face, kind, level = [], [], [], []
    for index, region in enumerate(tqdm(regions, desc="degrading", disable=not progress, leave=False)):
        crops.append(dg.clean_crop(region))
        face.append(index), kind.append(CLEAN), level.append(0)
        for (k, lv), crop in dg.degrade_all(region, seed=seed * 100_003 + index).items():
            crops.append(crop)
            face.append(index), kind.append(k), level.append(lv)
    return RankingSet(
        crops=np.stack(crops).astype(np.uint8),
        face=np.asarray(face, np.int64),
        kind=np.asarray(kind),
        level=np.asarray(level, np.int64),
        identities=tuple(identities),
    )


def pair_fractions(scores: np.ndarray, rset: RankingSet) -> dict[str, float]:
    """Per degradation (and "all"): fraction of (clean, degraded) pairs ordered correctly."""
    scores = np.asarray(scores, np.float64)
    clean_index = {int(f): i for i, f in enumerate(rset.face) if rset.kind[i] == CLEAN}
    wins: dict[str, list[float]] = {k: [] for k in dg.DEGRADATIONS}
    for i in range(len(scores)):
        k = str(rset.kind[i])
        if k == CLEAN:
            continue
        clean = scores[clean_index[int(rset.face[i])]]
        wins[k].append(1.0 if clean > scores[i] else 0.5 if clean == scores[i] else 0.0)
    out = {k: float(np.mean(v)) if v else float("nan") for k, v in wins.items()}
    every = [w for v in wins.values() for w in v]
    out["all"] = float(np.mean(every)) if every else float("nan")
    out["min"] = float(min(out[k] for k in dg.DEGRADATIONS if wins[k]))
    return out


def identity_split(identities: tuple[str, ...] | list[str], folds: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Faces split into ``folds`` groups with no identity in two groups (seeded, balanced by
    count of faces): returns, per fold, the face indices in it."""
    identities = list(identities)
    names = sorted(set(identities))
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    counts = {name: identities.count(name) for name in names}
    # greedy: biggest identities first, each to the currently smallest fold
    groups: list[list[str]] = [[] for _ in range(folds)]
    sizes = [0] * folds
    for name in sorted(names, key=lambda n: -counts[n]):
        j = int(np.argmin(sizes))
        groups[j].append(name)
        sizes[j] += counts[name]
    return [np.array([i for i, ident in enumerate(identities) if ident in set(g)], np.int64) for g in groups]


COLUMNS = dg.DEGRADATIONS + ("all", "min")


def format_table(rows: dict[str, dict[str, float]], columns: tuple[str, ...] = COLUMNS) -> str:
    """Markdown table: one row per score, one column per degradation."""
    head = "| score | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [head, rule]
    for name, fractions in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{fractions.get(c, float('nan')):.2f}" for c in columns) + " |")
    return "\n".join(lines)
