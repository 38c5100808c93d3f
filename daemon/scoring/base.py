"""The interface every quality scorer offers the pipeline.

A scorer turns a batch of 64x64 uint8 grayscale crops into one float per crop, higher meaning a
better face to keep. Scorers are deterministic: one crop, one score, on every backend and run.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Scorer(Protocol):
    name: str  # e.g. "paper" (log RP, L=10) or the default scorer's name
    model_id: str  # the bundle's model id, recorded in every sealed record

    def score_batch(self, crops: np.ndarray) -> np.ndarray:
        """crops: N x 64 x 64 uint8 -> N float64 scores (higher is better)."""
        ...


def warm_up(scorer: Scorer) -> None:
    """Score one synthetic, non-uniform crop now (the daemon does it before READY).

    Backends build their sessions on first use (the emulation's onnxruntime graph takes about
    a second); done here, that happens at start instead of stalling the first face's frame
    (and the systemd watchdog), and a bundle whose outputs cannot be scored fails at start."""
    ramp = np.add.outer(np.arange(64), np.arange(64)) * 2  # 0..252: a smooth, non-uniform crop
    scorer.score_batch(ramp.astype(np.uint8)[None])
