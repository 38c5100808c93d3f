"""The paper's score (Baert et al.): log RP(x) with L = 10 fixed latent samples.

A thin scorer around ``likelihood.log_rp`` (the one definition of the maths): the encoder runs
once, the decoder once per row of the bundle's epsilon table. Kept available by name
("paper") and reported beside the default score; it is NOT the default because on unseen real
faces it ranks blurred, downscaled and darkened crops above clean ones (docs/MODEL_CARD.md).
"""

from __future__ import annotations

import numpy as np

from snapseal.daemon.accel.base import Accelerator
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring import likelihood
from snapseal.daemon.scoring.inputs import UNIFORM_SCORE, check_crops, uniform_mask


class PaperScorer:
    """score = log RP(x), L samples z = mu_z + sigma_z * eps_l (eps: the bundle's table)."""

    name = "paper"

    def __init__(self, accel: Accelerator, epsilon: np.ndarray, model_id: str) -> None:
        epsilon = np.asarray(epsilon, dtype=np.float32)
        if epsilon.ndim != 2 or epsilon.shape[0] < 1:
            raise SnapsealError(f"paper scorer: epsilon table must be L x D, got shape {epsilon.shape}")
        self.accel = accel
        self.epsilon = epsilon
        self.model_id = model_id

    def components(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """{"score", "log_rp", "uniform"}: each N float64 (uniform crops: score UNIFORM_SCORE)."""
        crops = check_crops(crops)
        uniform = uniform_mask(crops)
        log_rp = np.full(len(crops), np.nan)
        if (~uniform).any():
            real = crops[~uniform]
            latent = self.accel.encode(real)
            log_rp[~uniform] = likelihood.log_rp(real, latent, self.accel.decode, self.epsilon)
        score = np.where(uniform, UNIFORM_SCORE, log_rp)
        if not np.all(np.isfinite(score)):  # a broken graph output must never pass as a score
            raise SnapsealError(f"paper scorer: non-finite log RP from the accelerator ({self.model_id})")
        return {"score": score, "log_rp": score.copy(), "uniform": uniform.astype(np.float64)}

    def score_batch(self, crops: np.ndarray) -> np.ndarray:
        return self.components(crops)["score"]
