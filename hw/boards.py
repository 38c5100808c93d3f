"""Board profiles: everything board-specific the FINN flow needs, in one place.

Budgets are the devices' totals (Xilinx data sheets): a build must stay at or below
``max_lut_fraction`` / ``max_bram_fraction`` of them so placement and routing have room.

The CPU side of the same boards (detector runtime, threads, frame size, minimum face, how often
a full detection runs) lives in ``daemon/board_profiles.py``, which the daemon reads without
importing hw/; ``BoardProfile.runtime`` and ``RUNTIME_PROFILES`` here are that module's.
"""

from __future__ import annotations

from dataclasses import dataclass

from snapseal.daemon.board_profiles import RUNTIME_PROFILES, RuntimeProfile, runtime_profile
from snapseal.daemon.errors import SnapsealError


@dataclass(frozen=True)
class ResourceBudget:
    LUT: int
    BRAM_18K: int
    DSP: int

    def as_dict(self) -> dict[str, int]:
        return {"LUT": self.LUT, "BRAM_18K": self.BRAM_18K, "DSP": self.DSP}


@dataclass(frozen=True)
class BoardProfile:
    name: str  # our CLI name (make estimate BOARD=...)
    finn_board: str  # FINN's name for the board (pynq_part_map / driver templates)
    part: str
    clock_mhz: float
    port_width_bits: int  # AXI HP port the IODMAs use
    target_crops_per_s: float  # what the chosen estimator must reach
    folding_headroom: float  # fold for target * headroom: estimates are optimistic
    mvau_wwidth_max: int  # FINN folding default: widest MVAU weight stream (bits)
    budget: ResourceBudget
    max_lut_fraction: float = 0.70
    max_bram_fraction: float = 0.80

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def runtime(self) -> RuntimeProfile:
        """The board's CPU-side runtime profile (daemon/board_profiles.py)."""
        return runtime_profile(self.name)

    @property
    def folding_target_fps(self) -> int:
        return int(round(self.target_crops_per_s * self.folding_headroom))


BOARDS: dict[str, BoardProfile] = {
    "pynq-z2": BoardProfile(
        name="pynq-z2",
        finn_board="Pynq-Z2",
        part="xc7z020clg400-1",
        clock_mhz=100.0,
        port_width_bits=64,
        target_crops_per_s=300.0,  # 30 fps x 10 faces
        folding_headroom=1.25,
        mvau_wwidth_max=36,
        budget=ResourceBudget(LUT=53_200, BRAM_18K=280, DSP=220),
    ),
    "ultra96-v2": BoardProfile(
        name="ultra96-v2",
        finn_board="Ultra96-V2",
        part="xczu3eg-sbva484-1-i",
        clock_mhz=150.0,
        port_width_bits=128,
        target_crops_per_s=600.0,
        folding_headroom=1.25,
        mvau_wwidth_max=72,
        budget=ResourceBudget(LUT=70_560, BRAM_18K=432, DSP=360),
    ),
}


def get_board(name: str) -> BoardProfile:
    """The profile for ``name``; an unknown name lists the known ones."""
    try:
        return BOARDS[name]
    except KeyError:
        known = ", ".join(sorted(BOARDS))
        raise SnapsealError(f"unknown board {name!r}; known boards: {known}") from None


__all__ = ["BOARDS", "BoardProfile", "RUNTIME_PROFILES", "ResourceBudget", "RuntimeProfile", "get_board",
           "runtime_profile"]
