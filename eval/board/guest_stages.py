"""Run the daemon's pipeline on a clip inside the ARM guest, each stage marked for the plugin.

Runs in the board's Python (under qemu, with eval/board/insn_buckets.so counting), from the
daemon as installed (the wheel in the board venv)::

    python guest_stages.py --frames clip.npy --config board.toml --out stats.json

The pipeline is the daemon's own (``service.build_pipeline`` from the given config, scoring
inline so that one thread does all the work and the counts stay per stage); this script only
wraps each stage object's entry point in ``marks.stage(...)``, so nothing in the daemon changes
for the measurement. Frames come pre-decoded from an .npy (N x H x W x 3 uint8): a camera
delivers decoded frames, and a decoder thread would smear its instructions over every bucket.
With the fpga backend the bitstream is eval/board/pynq_stub (``SNAPSEAL_PYNQ_STUB=zeros``):
the host side (packing, DMA protocol, unpacking, host tails, score terms) is the daemon's real
code and its work is counted; the stub's own work lands in bucket "accel" and is left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from marks import mark, stage, wrap  # noqa: E402


@dataclass
class _Stats:
    frames: int = 0

    def as_dict(self) -> dict:
        return {"frames": self.frames}


class _Spec:
    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"frames {self.path}"


class ArraySource:
    """A FrameSource over an .npy of frames (optionally resized to ``size``), read on the caller's thread."""

    def __init__(self, path: Path, size: tuple[int, int] | None = None) -> None:
        import numpy as np

        self.frames = np.load(path, mmap_mode="r")
        self.size = size
        self.position = 0
        self._ended = False
        self.stats = _Stats()
        self.spec = _Spec(path)

    def read(self, timeout: float = 0.5):
        import cv2
        import numpy as np

        from snapseal.daemon.types import Frame

        if self.position >= len(self.frames):
            self._ended = True
            return None
        image = np.ascontiguousarray(self.frames[self.position])
        if self.size is not None and (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        frame = Frame(image_bgr=image, timestamp=time.time(), index=self.position)
        self.position += 1
        self.stats.frames += 1
        return frame

    @property
    def ended(self) -> bool:
        return self._ended

    def close(self) -> None:
        self._ended = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--size", default=None, help="WxH to resize frames to (default: as stored)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from snapseal.daemon.config import load_config
    from snapseal.daemon.service import build_pipeline

    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    config = load_config(args.config)
    source = ArraySource(args.frames, size)
    built = build_pipeline(config, ephemeral_device_key=True, source=source, background_scoring=False)
    pipeline = built.pipeline
    crops = {"made": 0, "scored": 0}

    wrap(source, "read", "capture")
    schedule = getattr(pipeline, "schedule", None)
    if not (schedule is not None and wrap(schedule, "detect", "detect")):
        wrap(pipeline.detector, "detect", "detect")
    for net, bucket in (("_pnet", "pnet"), ("_rnet", "rnet"), ("_onet", "onet")):
        runner = getattr(pipeline.detector, net, None)
        if runner is not None:
            wrap(runner, "run", bucket)
    wrap(pipeline.tracker, "update", "track")
    cropper = pipeline.cropper

    def counted_cropper(frame, detection):
        with stage("crop"):
            crop = cropper(frame, detection)
        crops["made"] += crop is not None
        return crop

    pipeline.cropper = counted_cropper
    add = pipeline.chooser.add

    def counted_add(track_id, crop):
        with stage("score"):
            result = add(track_id, crop)
        crops["scored"] += 1
        return result

    pipeline.chooser.add = counted_add
    for method in ("flush", "close", "end_track"):  # each may score queued crops
        wrap(pipeline.chooser, method, "score")
    # The host's side of one accelerator call (packing, DMA protocol, unpacking, host tails),
    # inside "score"; the device's own work inside it is "accel".
    accel = getattr(getattr(pipeline.chooser, "scorer", None), "accel", None)
    if accel is not None:
        wrap(accel, "_run_batch", "fpga_io")
    wrap(pipeline.sink, "write", "seal")
    mark(0)
    summary = pipeline.run()
    mark(0)
    stats = summary.as_dict()
    stats.pop("tracks", None)
    stats.update({
        "crops": crops["made"],
        "scored": crops["scored"],
        "tracks_sealed": len(summary.sealed_tracks()),
        "pipeline": built.describe,
        "frame_size": list(size) if size else list(source.frames.shape[2:0:-1]),
    })
    args.out.write_text(json.dumps(stats, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
