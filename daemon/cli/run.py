"""``snapseal run``: the camera daemon. Runs until a file source ends or SIGTERM/SIGINT.

    snapseal run --source SRC --store DIR --recipient PUB --device-key KEY [--config FILE] ...

Options override the config file's values. The device signing key is required: a camera whose
records must prove where they came from cannot invent its key at start. For demos and tests,
``--ephemeral-device-key`` signs with a throwaway key (logged as a warning; nothing is written).
At the end a per-track summary (track id, frames, best score, record id) goes to stdout.

Exit status: 0 when every sealed record reached the store; 3 when records were lost (store full,
read-only or gone for longer than the queue could hold, or no period key: the log says which);
2 for a bad config, key or source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from snapseal.daemon.config import load_config, setting_of

EXIT_RECORDS_LOST = 3

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
    parser.add_argument("--ephemeral-device-key", action="store_true",
                        help="demo/testing only: sign with a throwaway key instead of --device-key")
    for dest, key in OVERRIDES.items():  # each option's help is its config key's one description
        spec = setting_of(key)
        option = "--" + ("store" if key == "store.dir" else "tracker" if key == "tracker.kind" else dest.replace("_", "-"))
        kwargs: dict = {"dest": dest, "help": f"{spec.help} [{key}]"}
        if spec.choices:
            kwargs["choices"] = spec.choices
        elif spec.kind in ("int", "float"):
            kwargs["type"] = int if spec.kind == "int" else float
        parser.add_argument(option, **kwargs)
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
    lost = f", {summary.records_lost} LOST (see the log)" if summary.records_lost else ""
    queued = f", {summary.records_queued} still queued" if summary.records_queued else ""
    print(f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), "
          f"{summary.records_written} record(s) sealed, {summary.records_stored} stored in {config.store.dir}"
          f"{queued}{lost}")
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps(summary.as_dict(), indent=1) + "\n", encoding="utf-8")
    sys.stdout.flush()
    return EXIT_RECORDS_LOST if summary.records_lost else 0
