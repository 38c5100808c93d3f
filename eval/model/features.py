"""Research-only crop measurements for the score candidates (eval/model/score_candidates.py).

The host terms the deployed scorers use are in daemon/scoring/features.py; these are the
candidates that measured worse and so never ship to the camera.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from snapseal.daemon.scoring.features import IMMERKAER_KERNEL

LN2 = math.log(2.0)


def immerkaer_noise_sigma(crops: np.ndarray) -> np.ndarray:
    """Immerkaer's fast estimate of additive white noise's std, in grey levels (0..255)."""
    h, w = crops.shape[1:]
    out = np.empty(len(crops), np.float64)
    for i, crop in enumerate(crops):
        response = cv2.filter2D(crop.astype(np.float64), -1, IMMERKAER_KERNEL)[1:-1, 1:-1]
        out[i] = math.sqrt(math.pi / 2.0) * np.abs(response).sum() / (6.0 * (w - 2) * (h - 2))
    return out


def mean_level(crops: np.ndarray) -> np.ndarray:
    """Mean grey level, 0..255."""
    return crops.reshape(len(crops), -1).astype(np.float64).mean(axis=1)


def laplace_loglik_nats(crops: np.ndarray, mu_x: np.ndarray, log_sigma_x: np.ndarray) -> np.ndarray:
    """The same residual under a Laplace density with the Gaussian's std (b = sigma / sqrt 2)."""
    x = crops.astype(np.float64) / 255.0
    log_b = log_sigma_x.astype(np.float64) - 0.5 * LN2
    per_pixel = -np.abs(x - mu_x.astype(np.float64)) * np.exp(-log_b) - log_b - LN2
    return per_pixel.reshape(len(crops), -1).sum(axis=1)


def residual_highpass_energy(crops: np.ndarray, mu_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(energy of the crop's high-pass detail, of the reconstruction's), grey levels^2 / pixel."""
    x = crops.astype(np.float64)
    recon = np.clip(mu_x.astype(np.float64), 0.0, 1.0) * 255.0
    out_x = np.empty(len(crops))
    out_r = np.empty(len(crops))
    for i in range(len(crops)):
        out_x[i] = cv2.Laplacian(x[i], cv2.CV_64F, ksize=1).var()
        out_r[i] = cv2.Laplacian(recon[i], cv2.CV_64F, ksize=1).var()
    return out_x, out_r
