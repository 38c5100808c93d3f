"""``snapseal run``: the camera daemon. Runs until a file source ends or SIGTERM/SIGINT.

    snapseal run --source SRC --store DIR --recipient PUB --device-key KEY [--config FILE] ...

Options override the config file's values. The device signing key is required: a camera whose
records must prove where they came from cannot invent its key at start. For demos and tests,
``--ephemeral-device-key`` signs with a throwaway key (logged as a warning; nothing is written).
At the end a per-track summary (track id, frames, best score, record id) goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from snapseal.daemon.config import BACKENDS, LOG_FORMATS, TRACKER_KINDS, load_config

# option dest -> config key it overrides
OVERRIDES = {
    "source": "camera.source",
    "camera_id": "camera.camera_id",
    "store": "store.dir",
    "recipient": "keys.recipient",
    "device_key": "keys.device_key",
    "backend": "quality.backend",
    "bundle": "quality.bundle",
    "scorer": "quality.scorer",
    "top_k": "quality.top_k",
    "clip_frames": "quality.clip_frames",
    "tracker": "tracker.kind",
    "min_face_px": "detector.min_face_px",
    "retention_days": "store.retention_days",
    "log_format": "service.log_format",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run the camera daemon (until the file ends or SIGTERM)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="TOML config file (options below override it)")
    parser.add_argument("--source", help="V4L2 index (0), /dev/videoN, rtsp://... URL or a video file")
    parser.add_argument("--store", help="directory of sealed records")
    parser.add_argument("--recipient", help="investigator public key file (investigator.pub)")
    parser.add_argument("--device-key", dest="device_key", help="the camera's signing key (device.key)")
    parser.add_argument("--ephemeral-device-key", action="store_true",
                        help="demo/testing only: sign with a throwaway key instead of --device-key")
    parser.add_argument("--backend", choices=BACKENDS, help="accelerator backend for scoring")
    parser.add_argument("--bundle", help="accelerator bundle directory (default: the bundled one)")
    parser.add_argument("--scorer", help="scorer name ('default' or 'paper')")
    parser.add_argument("--camera-id", dest="camera_id")
    parser.add_argument("--tracker", choices=TRACKER_KINDS)
    parser.add_argument("--top-k", dest="top_k", type=int)
    parser.add_argument("--clip-frames", dest="clip_frames", type=int)
    parser.add_argument("--min-face-px", dest="min_face_px", type=int)
    parser.add_argument("--retention-days", dest="retention_days", type=float)
    parser.add_argument("--log-format", dest="log_format", choices=LOG_FORMATS)
    parser.add_argument("--summary-json", dest="summary_json", type=Path,
                        help="also write the run summary (tracks, stage times) as JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snapseal.daemon.pipeline import format_track_table
    from snapseal.daemon.logs import configure_logging
    from snapseal.daemon.service import build_pipeline, run_service

    overrides = {key: getattr(args, dest) for dest, key in OVERRIDES.items() if getattr(args, dest, None) is not None}
    origin = {key: "--" + dest.replace("_", "-") for dest, key in OVERRIDES.items()}
    config = load_config(args.config, overrides, origin)
    configure_logging(config.service.log_format)
    built = build_pipeline(config, ephemeral_device_key=args.ephemeral_device_key)
    summary = run_service(built)
    print(format_track_table(summary.tracks))
    print(f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), "
          f"{summary.records_written} record(s) in {config.store.dir}")
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps(summary.as_dict(), indent=1) + "\n", encoding="utf-8")
    sys.stdout.flush()
    return 0
