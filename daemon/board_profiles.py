"""What the camera's CPU runs on each board: detector runtime, threads, frame size, minimum face,
how often a full detection runs. The one place for these; ``hw/boards.py`` (the FPGA side of
the same boards) refers to it, ``deploy/`` writes a profile's keys into the board's config
(``config_overrides``). No numpy, no imports beyond the standard library: install scripts and
the build read it too.

The numbers behind each choice are in docs/HARDWARE.md ("Detector runtimes"); the ARM harness
(eval/board/) estimates a profile's frames/s from instruction counts under qemu. ``full_every``
(k) was chosen with ``python -m snapseal.eval.bench.detector --selection`` (the evaluation's
videos: at k = 4, 5 and 8 every walker keeps exactly one record and the kept crops are no worse
than full detection on every frame) and on fast walk-bys (320x240, 50 frames a person: one
record per person at k = 4-6 in every seed tried, at k = 8 in 7 of 8): k = 5 on both boards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from snapseal.daemon.errors import SnapsealError


@dataclass(frozen=True)
class RuntimeProfile:
    name: str  # the board's CLI name, as in hw/boards.py (make estimate BOARD=...)
    cpu: str  # what the numbers were chosen for
    cores: int
    frame_width: int  # the camera's capture size the profile was chosen at
    frame_height: int
    min_face_px: int  # [detector] min_face_px
    runtime: str  # [detector] runtime
    threads: int  # [detector] threads
    pyramid_interpolation: str  # [detector] pyramid_interpolation
    full_every: int  # [detector] full_every (k): full detection every k-th frame
    skip_near_duplicates: float  # [quality] skip_near_duplicates (grey levels; 0 = off)

    def config_overrides(self) -> dict[str, object]:
        """The profile as config keys ({"section.key": value}, what ``load_config`` takes)."""
        return {
            "detector.min_face_px": self.min_face_px,
            "detector.runtime": self.runtime,
            "detector.threads": self.threads,
            "detector.pyramid_interpolation": self.pyramid_interpolation,
            "detector.full_every": self.full_every,
            "quality.skip_near_duplicates": self.skip_near_duplicates,
        }

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


RUNTIME_PROFILES: dict[str, RuntimeProfile] = {
    # Zynq-7020: 2 x Cortex-A9 at 650 MHz, NEON; onnxruntime has no armv7l wheel and the
    # distro's cv2.dnn has no NEON: ncnn. One detector thread: the other core runs the scoring
    # worker, decoding and sealing (ncnn's threads on a core that is busy elsewhere measured
    # several times slower than one thread).
    "pynq-z2": RuntimeProfile(
        name="pynq-z2", cpu="2 x Cortex-A9 650 MHz (armv7l, NEON)", cores=2,
        frame_width=640, frame_height=480, min_face_px=40,
        runtime="ncnn", threads=1, pyramid_interpolation="linear", full_every=5,
        skip_near_duplicates=2.0,
    ),
    # Zynq UltraScale+ ZU3EG: 4 x Cortex-A53 at 1.2 GHz: two detector threads, two cores left
    # for the scoring worker, decoding and sealing.
    "ultra96-v2": RuntimeProfile(
        name="ultra96-v2", cpu="4 x Cortex-A53 1.2 GHz (aarch64)", cores=4,
        frame_width=640, frame_height=480, min_face_px=40,
        runtime="ncnn", threads=2, pyramid_interpolation="linear", full_every=5,
        skip_near_duplicates=2.0,
    ),
    # A workstation or CI (x86_64): the daemon's defaults.
    "x86_64": RuntimeProfile(
        name="x86_64", cpu="x86_64", cores=2,
        frame_width=640, frame_height=480, min_face_px=40,
        runtime="onnxruntime", threads=1, pyramid_interpolation="area", full_every=1,
        skip_near_duplicates=0.0,
    ),
}


def runtime_profile(name: str) -> RuntimeProfile:
    """The runtime profile of board ``name``; an unknown name lists the known ones."""
    try:
        return RUNTIME_PROFILES[name]
    except KeyError:
        raise SnapsealError(f"unknown board {name!r}; known boards: {', '.join(sorted(RUNTIME_PROFILES))}") from None
