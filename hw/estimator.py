"""Which RP estimator the FPGA computes, by measurement: at-mean single pass and encoder-only
(-KL) against the paper's L=10 reference, on held-out val crops and degraded copies of each
(blur / noise / darkening, 3 levels: 12 synthetic "tracks" of 10 crops when the val set has 12).

``python -m snapseal.hw.estimator``: Spearman rho vs L=10 and same-best-crop-per-track rate.
"""
import time

import cv2
import numpy as np
from scipy.stats import spearmanr
from snapseal.daemon.bundle import load_bundle
from snapseal.daemon.accel.emulate import EmulateAccelerator
from snapseal.daemon.scoring.likelihood import log_rp, log_likelihood_at_mean, kl_divergence
VAL = "build/data/bootstrap/val.npz"


def main() -> None:
    b = load_bundle(); acc = EmulateAccelerator(b)
    val = np.load(VAL)["crops"]
    rng = np.random.default_rng(0)
    tracks = []
    for c in val:
        t = [c]
        for k in (3, 7, 11): t.append(cv2.GaussianBlur(c, (k, k), 0))
        for s in (8, 20, 40): t.append(np.clip(c + rng.normal(0, s, c.shape), 0, 255).astype(np.uint8))
        for f in (0.7, 0.45, 0.25): t.append((c * f).astype(np.uint8))
        tracks.append(np.stack(t))
    crops = np.concatenate(tracks); n_per = len(tracks[0])
    t0 = time.time(); lat, dist = acc.forward_at_mean(crops); t1 = time.time()
    ref = log_rp(crops, lat, acc.decode, b.epsilon); t2 = time.time()
    at_mean = log_likelihood_at_mean(crops, dist); enc = -kl_divergence(lat)
    print("crops", len(crops), "L", b.epsilon.shape[0], f"at-mean {t1-t0:.1f}s, L=10 {t2-t1:.1f}s")
    for name, s in (("at_mean", at_mean), ("encoder_only_negKL", enc)):
        rho = spearmanr(s, ref).correlation
        same = np.mean([np.argmax(s[i*n_per:(i+1)*n_per]) == np.argmax(ref[i*n_per:(i+1)*n_per]) for i in range(len(tracks))])
        print(f"{name}: spearman vs L=10 {rho:.4f}; same best per track {same:.3f} ({len(tracks)} tracks x {n_per})")


if __name__ == "__main__":
    main()
