"""The daemon's real run path (build_pipeline + run_service) on a generated walk-by, for the
SIGKILL test (tests/daemon/test_crash.py) and the write measurements: prints ``ready``, then
``frames N`` after every loop turn (after the sink's provisional writes for those frames), and
at the end one JSON line with the sink's counters.

    python tests/daemon/crash_driver.py VIDEO STORE RECIPIENT.pub --people 6 --frames 40 --seed 3
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("video")
    parser.add_argument("store")
    parser.add_argument("recipient")
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--fps", type=float, default=50.0)
    parser.add_argument("--realtime", action="store_true")
    parser.add_argument("--provisional-interval", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--overlap", type=float, default=0.0)
    parser.add_argument("--tracker", default="distance")
    args = parser.parse_args()

    from snapseal.daemon.config import load_config
    from snapseal.daemon.logs import configure_logging
    from snapseal.daemon.service import build_pipeline, run_service
    from snapseal.eval.scenes.walkby import TruthDetector, plan_walkby

    import numpy as np

    class Sharpness:
        name = "sharpness"
        model_id = "test-sharpness"

        def score_batch(self, crops):
            crops = crops.astype(np.float64)
            return np.abs(np.diff(crops, axis=1)).mean(axis=(1, 2)) + np.abs(np.diff(crops, axis=2)).mean(axis=(1, 2))

    configure_logging("json", stream=sys.stderr)
    plan = plan_walkby(320, 240, n_people=args.people, frames_per_person=args.frames, overlap=args.overlap, fps=args.fps,
                       seed=args.seed)
    config = load_config(None, {"camera.source": args.video, "store.dir": args.store, "keys.recipient": args.recipient,
                                "camera.realtime": args.realtime, "quality.batch_size": args.batch_size,
                                "tracker.min_length_frames": 5, "tracker.max_age_frames": 5,
                                "tracker.kind": args.tracker})
    built = build_pipeline(config, ephemeral_device_key=True, detector=TruthDetector(plan), scorer=Sharpness(),
                           background_scoring=args.batch_size > 1)
    built.pipeline.sink.provisional_interval_s = args.provisional_interval
    built.pipeline.on_tick = lambda summary: print(f"frames {summary.frames}", flush=True)
    print("ready", flush=True)
    summary = run_service(built)
    sink = built.pipeline.sink
    from pathlib import Path

    final_bytes = sum(path.stat().st_size for path in Path(args.store).glob("*.snap"))
    print(json.dumps({"frames": summary.frames, "seconds": summary.seconds, "scene_seconds": plan.n_frames / args.fps,
                      "sink": sink.stats.as_dict(), "store_bytes_written": sink.store.bytes_written,
                      "store_writes": sink.store.written_records, "final_bytes_on_disk": final_bytes,
                      "records_on_disk": len(list(Path(args.store).glob("*.snap")))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
