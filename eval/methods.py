"""The quality methods compared side by side: each turns a batch of probes into one score each,
higher = better. Nothing here re-implements a scorer: the VAE comes from the daemon's factory
(``snapseal.daemon.scoring.load_scorer``; variants in ``eval/vae_variants.py``), the classical
baselines from
``snapseal.eval.model.baselines``. Added here: face size (Frigate-style) and random.
The PERFECT oracle is not a method over pixels (it reads the genuine distance): the ERC runner
adds it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from snapseal.daemon.types import Box

FRAME_EDGE_PENALTY = 1e12  # Frigate never prefers a box touching the frame edge to one that does not


@dataclass(frozen=True)
class ProbeBatch:
    """What the methods may look at for N probes (never the identity or the distance)."""

    crops: np.ndarray  # N x 64 x 64 uint8: what the camera's scorer sees
    face_area_px: np.ndarray  # N: the detection box area in its (uncropped) frame
    on_edge: np.ndarray  # N bool: the detection box touches the frame edge
    detector_confidence: np.ndarray  # N: the detector's confidence (Frigate's "score")
    keys: tuple[str, ...] = ()  # stable names of the probes (seed the random method)


@dataclass(frozen=True)
class QualityMethod:
    name: str  # display label, for reports only: code finds a method by its key
    family: str  # "vae" | "baseline" | "heuristic" | "chance"
    score: Callable[[ProbeBatch], np.ndarray]
    note: str = ""
    key: str = ""  # stable identifier, e.g. "vae-default-emulate", "laplacian-variance"

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)  # frozen: set once, here


# Keys of the methods the reports single out (the deployed default, the paper's score, the
# classical baselines and Frigate's heuristic). Frame selection's own rules: FRIGATE_RULE, ORACLE.
DEFAULT_EMULATE = "vae-default-emulate"
PAPER_EMULATE = "vae-paper-rp-emulate"
LAPLACIAN = "laplacian-variance"
BRISQUE = "brisque"
FACE_SIZE = "face-size"
RANDOM = "random"
FRIGATE_RULE = "Frigate rule (sequential)"
ORACLE = "PERFECT (oracle)"


@dataclass
class MethodSet:
    methods: list[QualityMethod] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what could not be loaded, and why

    def label(self, key: str) -> str | None:
        """The display label of the method with ``key``, or None when it was not loaded."""
        return next((m.name for m in self.methods if m.key == key), None)

    def labels(self, keys) -> list[str]:
        """Display labels of the loaded methods among ``keys``, in that order."""
        return [label for label in (self.label(key) for key in keys) if label is not None]


def on_frame_edge(box: Box, frame_shape: tuple[int, ...]) -> bool:
    """Frigate's ``on_edge``: the box touches the first/last pixel row or column."""
    height, width = frame_shape[:2]
    return box.x1 <= 0 or box.y1 <= 0 or box.x2 >= width - 1 or box.y2 >= height - 1


def face_size_score(batch: ProbeBatch) -> np.ndarray:
    """Frigate-style face size as one number: larger area is better, edge-touching boxes last."""
    area = np.asarray(batch.face_area_px, np.float64)
    return area - FRAME_EDGE_PENALTY * np.asarray(batch.on_edge, np.float64)


def random_score(batch: ProbeBatch) -> np.ndarray:
    """A fixed pseudo-random number per probe, from its key (reproducible, order-independent)."""
    keys = batch.keys or tuple(str(i) for i in range(len(batch.crops)))
    return np.array([zlib.crc32(key.encode()) / 2.0**32 for key in keys], np.float64)


def baseline_methods() -> MethodSet:
    found = MethodSet()
    try:
        from snapseal.eval.model.baselines import BASELINES, UNAVAILABLE
    except Exception as exc:  # the baselines module failed to import
        found.missing.append(f"classical baselines: snapseal.eval.model.baselines did not import ({exc})")
        return found
    labels = {"laplacian_var": "Laplacian variance", "brisque": "BRISQUE", "niqe": "NIQE"}
    keys = {"laplacian_var": LAPLACIAN, "brisque": BRISQUE, "niqe": "niqe"}
    for key, function in BASELINES.items():
        found.methods.append(QualityMethod(labels.get(key, key), "baseline", lambda b, f=function: f(b.crops),
                                           key=keys.get(key, key)))
    for key in ("brisque", "niqe"):
        if key not in BASELINES:
            why = UNAVAILABLE.get(key, "not in snapseal.eval.model.baselines.BASELINES")
            found.missing.append(f"{labels[key]}: {why}")
    return found


def heuristic_methods() -> MethodSet:
    return MethodSet([
        QualityMethod("face size (Frigate-style)", "heuristic", face_size_score,
                      "box area in the frame; edge-touching boxes last", key=FACE_SIZE),
        QualityMethod("random", "chance", random_score, key=RANDOM),
    ])


def _batched(scorer, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    parts = [np.asarray(scorer.score_batch(crops[i:i + batch]), np.float64) for i in range(0, len(crops), batch)]
    return np.concatenate(parts) if parts else np.zeros(0)


def all_methods(bundle_dir: Path | None = None, include_vae: bool = True, float_checkpoint: Path | None = None) -> MethodSet:
    result = MethodSet()
    parts = [baseline_methods(), heuristic_methods()]
    if include_vae:
        from snapseal.eval.vae_variants import DEFAULT_FLOAT_CHECKPOINT, vae_methods

        parts.insert(0, vae_methods(bundle_dir, float_checkpoint or DEFAULT_FLOAT_CHECKPOINT))
    for part in parts:
        result.methods.extend(part.methods)
        result.missing.extend(part.missing)
    return result
