"""One picture per track, like the paper's figures 7 and 8: the strip of the track's crops with
the kept one outlined, and the quality score over time under it.

Drawn with matplotlib (workstation only: the daemon itself never imports it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from snapseal.daemon.types import ScoredCrop


def pick_strip(crops: Sequence[ScoredCrop], kept_frame: int, max_crops: int = 14) -> list[ScoredCrop]:
    """At most ``max_crops`` crops evenly over the track, always including the kept one."""
    if len(crops) <= max_crops:
        return list(crops)
    indices = set(np.linspace(0, len(crops) - 1, max_crops - 1).round().astype(int).tolist())
    indices.add(next(i for i, c in enumerate(crops) if c.crop.frame_index == kept_frame))
    return [crops[i] for i in sorted(indices)]


def draw_track(path: Path, title: str, crops: Sequence[ScoredCrop], kept_frame: int, scorer_name: str) -> Path:
    """Write the strip + score curve of one track to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    crops = sorted(crops, key=lambda c: c.crop.frame_index)
    strip = pick_strip(crops, kept_frame)
    figure = plt.figure(figsize=(max(6.0, 0.75 * len(strip)), 3.6), dpi=110)
    grid = figure.add_gridspec(2, len(strip), height_ratios=[1.0, 1.5], hspace=0.35, wspace=0.05)
    for column, scored in enumerate(strip):
        axis = figure.add_subplot(grid[0, column])
        axis.imshow(scored.crop.pixels, cmap="gray", vmin=0, vmax=255)
        axis.set_xticks([])
        axis.set_yticks([])
        kept = scored.crop.frame_index == kept_frame
        for spine in axis.spines.values():
            spine.set_edgecolor("red" if kept else "0.7")
            spine.set_linewidth(3.0 if kept else 0.5)
        axis.set_title(f"{scored.crop.frame_index}", fontsize=7, color="red" if kept else "black")
    curve = figure.add_subplot(grid[1, :])
    frames = [c.crop.frame_index for c in crops]
    scores = [c.score for c in crops]
    curve.plot(frames, scores, "-", color="tab:blue", linewidth=1.2, marker=".", markersize=3)
    best = next(c for c in crops if c.crop.frame_index == kept_frame)
    curve.plot([kept_frame], [best.score], "o", color="red", markersize=7, label="kept")
    for scored in strip:
        curve.axvline(scored.crop.frame_index, color="0.85", linewidth=0.6, zorder=0)
    curve.set_xlabel("frame")
    curve.set_ylabel(f"score ({scorer_name})", fontsize=8)
    curve.legend(loc="best", fontsize=7)
    curve.grid(alpha=0.3)
    figure.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path
