"""Score fewer crops: a crop that nearly repeats the track's last scored crop is not scored.

A face standing still in front of the camera gives the same 64x64 model crop frame after
frame; scoring each costs the host side (crop terms, the accelerator's I/O) for a score that
can only tie. ``NearDuplicateFilter.keep(track_id, crop)`` is False when the crop's mean
absolute difference from the last crop *kept* for that track is below ``max_mean_abs_diff``
grey levels (compared against the last kept one, not the last seen, so a slow drift is still
scored once it adds up). The first crop of a track is always kept. What it costs in kept-crop
quality is measured with ``python -m snapseal.eval.bench.detector --selection`` (docs/HARDWARE.md).
"""

from __future__ import annotations

import numpy as np


class NearDuplicateFilter:
    def __init__(self, max_mean_abs_diff: float) -> None:
        if not 0.0 <= max_mean_abs_diff <= 255.0:
            raise ValueError(f"max_mean_abs_diff must be in [0, 255], got {max_mean_abs_diff}")
        self.max_mean_abs_diff = float(max_mean_abs_diff)
        self._last: dict[int, np.ndarray] = {}
        self.kept = 0
        self.skipped = 0

    def keep(self, track_id: int, crop: np.ndarray) -> bool:
        """True if this crop should be scored (and then remembered as the track's last kept)."""
        last = self._last.get(track_id)
        if last is not None and last.shape == crop.shape and self.max_mean_abs_diff > 0:
            # int16 difference: exact for uint8, 4096 pixels, no float work
            difference = np.abs(crop.astype(np.int16) - last).sum()
            if difference < self.max_mean_abs_diff * crop.size:
                self.skipped += 1
                return False
        self._last[track_id] = crop.astype(np.int16)
        self.kept += 1
        return True

    def end_track(self, track_id: int) -> None:
        self._last.pop(track_id, None)
