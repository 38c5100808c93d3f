"""``make demo``: run the daemon on the embedded default input and show what it kept.

    python -m snapseal.eval.scenes [--out build/demo] [--backend emulate]

1. keys: a demo investigator key pair and a device key in ``OUT/keys`` (made once);
2. input: a 640x480 walk-by composed from the asset photos (``walkby``; made once, in
   ``OUT/input``) and the real carphone clip from the assets;
3. the daemon's pipeline on each, in emulation mode, sealing into ``OUT/records/<video>``;
   per-track summary and throughput printed;
4. the records opened with the demo investigator key (as an investigator would), checked
   against what the daemon reported;
5. a picture per track in ``OUT/tracks/``: the strip of its crops, the kept one outlined, the
   score over time under it.

The pictures show faces in the clear: that is the investigator's side, after opening. The
daemon's own output (``OUT/records``) holds sealed records only.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

from snapseal.eval.scenes.assets import REPO_ROOT, carphone_path, load_face_patches
from snapseal.eval.scenes.figures import draw_track
from snapseal.eval.scenes.walkby import plan_walkby, write_video
from snapseal.daemon.errors import SnapsealError

WALKBY_PEOPLE = 5


def ensure_keys(keys_dir: Path) -> tuple[Path, Path, Path]:
    from snapseal.daemon.keys import DeviceKeyPair, InvestigatorKeyPair, save_device_keys, save_investigator_keys

    pub, key = keys_dir / "investigator.pub", keys_dir / "investigator.key"
    device = keys_dir / "device.key"
    if not (pub.exists() and key.exists()):
        pub, key = save_investigator_keys(InvestigatorKeyPair.generate(), keys_dir, force=True)
    if not device.exists():
        _, device = save_device_keys(DeviceKeyPair.generate(), keys_dir, force=True)
    return pub, key, device


def ensure_walkby(input_dir: Path, detector, seed: int = 0) -> Path:
    video = input_dir / f"walkby_640x480_seed{seed}.avi"
    if video.exists():
        return video
    print(f"demo: composing the walk-by video from the asset photos -> {video}", flush=True)
    patches = load_face_patches(detector)
    plan = plan_walkby(640, 480, n_people=WALKBY_PEOPLE, frames_per_person=100, n_patches=len(patches), seed=seed)
    partial = video.with_suffix(".part.avi")
    write_video(plan, patches, partial)
    partial.rename(video)
    return video


def run_one(name: str, video: Path, out: Path, keys: tuple[Path, Path, Path], backend: str, min_face_px: int,
            scorer=None) -> dict:
    from snapseal.daemon.config import load_config
    from snapseal.daemon.pipeline import format_track_table
    from snapseal.daemon.service import build_pipeline, run_service

    store = out / "records" / name
    shutil.rmtree(store, ignore_errors=True)
    config = load_config(None, {
        "camera.source": str(video), "camera.camera_id": f"demo-{name}", "store.dir": str(store),
        "keys.recipient": str(keys[0]), "keys.device_key": str(keys[2]), "quality.backend": backend,
        "detector.min_face_px": min_face_px,
    })
    crops_by_track: dict[int, list] = defaultdict(list)
    kept_by_track: dict[int, tuple[int, str]] = {}
    built = build_pipeline(
        config, scorer=scorer,
        on_scored=lambda track_id, scored: crops_by_track[track_id].append(scored),
        on_choice=lambda choice, ids: kept_by_track.__setitem__(choice.track.track_id, (choice.best.crop.frame_index, ids[0])),
    )
    scorer_name = built.pipeline.chooser.scorer.name
    print(f"\n== {name}: {video.name} ({built.describe})", flush=True)
    summary = run_service(built)
    print(format_track_table(summary.tracks))
    stages = "  ".join(f"{k} {v:.1f}" for k, v in summary.stage_ms_per_frame.items())
    print(f"{summary.frames} frames in {summary.seconds:.1f} s = {summary.fps:.1f} fps; ms/frame: {stages} "
          f"(scorer busy {summary.score_busy_ms_per_frame:.1f} on its worker thread)")
    return {"name": name, "store": store, "summary": summary, "crops": crops_by_track, "kept": kept_by_track,
            "scorer": scorer_name}


def open_and_draw(result: dict, key_path: Path, tracks_dir: Path) -> list[Path]:
    from snapseal.daemon.keys import load_investigator_private
    from snapseal.investigator.open import open_record
    from snapseal.daemon.records.store import list_headers

    investigator = load_investigator_private(key_path)
    opened = {}
    for stored in list_headers(result["store"]):
        record = open_record(stored.path.read_bytes(), investigator, source=stored.path)
        opened[record.meta.track_id] = record
    pictures = []
    for track in result["summary"].tracks:
        if not track.sealed:
            continue
        record = opened.get(track.track_id)
        if record is None or record.header.record_id not in track.record_ids:
            raise SnapsealError(f"demo: record of track {track.track_id} missing or mismatched in {result['store']}")
        kept_frame = result["kept"][track.track_id][0]
        crops = result["crops"][track.track_id]
        kept_pixels = next(c.crop.pixels for c in crops if c.crop.frame_index == kept_frame)
        if not (record.crop == kept_pixels).all():
            raise SnapsealError(f"demo: opened crop of track {track.track_id} differs from the kept crop")
        title = (f"{result['name']} track {track.track_id}: {track.frames} frames, kept frame {kept_frame} "
                 f"(score {track.best_score:.4g}), record {track.record_ids[0][:12]}")
        pictures.append(draw_track(tracks_dir / f"{result['name']}_track{track.track_id:03d}.png", title, crops,
                                   kept_frame, result["scorer"]))
    print(f"{result['name']}: opened {len(opened)} record(s) with the demo investigator key; "
          f"signatures and crops check out", flush=True)
    return pictures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.scenes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "demo")
    parser.add_argument("--backend", default="emulate", choices=("emulate", "cpu", "fpga"))
    args = parser.parse_args(argv)

    from snapseal.daemon.detect import make_detector
    from snapseal.daemon.logs import configure_logging

    started = time.perf_counter()
    configure_logging("text", level=logging.WARNING)  # the demo prints its own summary
    try:
        keys = ensure_keys(args.out / "keys")
        walkby = ensure_walkby(args.out / "input", make_detector(min_face_px=40))
        carphone = carphone_path()
        tracks_dir = args.out / "tracks"
        shutil.rmtree(tracks_dir, ignore_errors=True)
        pictures = []
        for name, video, min_face in (("walkby", walkby, 40), ("carphone", carphone, 24)):
            result = run_one(name, video, args.out, keys, args.backend, min_face)
            pictures += open_and_draw(result, keys[1], tracks_dir)
    except SnapsealError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    print(f"\ndemo done in {time.perf_counter() - started:.0f} s. Sealed records: {args.out / 'records'}; "
          f"demo investigator key: {keys[1]}")
    print(f"{len(pictures)} track pictures (crops strip, kept one outlined in red, score over time) in {tracks_dir}/")
    for picture in pictures:
        print(f"  {picture}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
