"""Record size and the pipeline's peak memory with and without the evidence images.

    python -m snapseal.eval.record_size [--video build/demo/input/walkby_640x480_seed0.avi]

Runs the daemon's own pipeline (``service.build_pipeline``: MTCNN, the IoU tracker, the default
scorer on emulate, the sealing sink) on one walk-by three times -- the model crop only (records
as before the evidence images), with the evidence image (the default), and with the person's
region as well -- and reports the sealed records' sizes on disk and the peak of Python-tracked
memory during the run (tracemalloc: numpy's buffers included; onnxruntime's own arenas are not,
they do not depend on the evidence). Writes the "evidence" section of docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO_ROOT / "build" / "demo" / "input" / "walkby_640x480_seed0.avi"


def measure(video: Path, evidence, label: str) -> dict:
    from snapseal.daemon.config import load_config
    from snapseal.daemon.crop import make_face_crop
    from snapseal.daemon.keys import InvestigatorKeyPair, save_investigator_keys
    from snapseal.daemon.service import build_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        pub, _ = save_investigator_keys(InvestigatorKeyPair.generate(), Path(tmp) / "keys")
        store = Path(tmp) / "store"
        config = load_config(None, {"camera.source": str(video), "store.dir": str(store), "keys.recipient": str(pub)})
        built = build_pipeline(config, ephemeral_device_key=True)
        built.pipeline.cropper = lambda frame, detection: make_face_crop(frame, detection, evidence=evidence)
        tracemalloc.start()
        started = time.perf_counter()
        summary = built.pipeline.run()
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sizes = [p.stat().st_size for p in store.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return {"label": label, "records": len(sizes), "mean_kb": statistics.mean(sizes) / 1024 if sizes else 0.0,
            "max_kb": max(sizes) / 1024 if sizes else 0.0, "peak_mb": peak / 2**20, "fps": summary.frames / seconds,
            "frames": summary.frames}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.record_size", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "docs" / "RESULTS.md")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        print(f"snapseal: error: {args.video} not found (run `make demo` or `make eval` first)", file=sys.stderr)
        return 2
    from snapseal.daemon.crop import EvidenceSettings
    from snapseal.daemon.scoring.chooser import PARETO_CAP
    from snapseal.eval import report

    default = EvidenceSettings()
    runs = [measure(args.video, None, "model crop only (before)"),
            measure(args.video, default, f"+ evidence image (default: cap {default.max_side} px, context {default.context:g})"),
            measure(args.video, EvidenceSettings(person_region=True),
                    f"+ evidence + person region (cap {default.person_max_side} px)")]
    rows = [[r["label"], str(r["records"]), f"{r['mean_kb']:.1f}", f"{r['max_kb']:.1f}", f"{r['peak_mb']:.1f}",
             f"{r['fps']:.1f}"] for r in runs]
    body = ("## Evidence images: record size and memory\n\n"
            f"Regenerate with `python -m snapseal.eval.record_size`; measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
            f"on {args.video.name} ({runs[0]['frames']} frames), the daemon's pipeline with its defaults (MTCNN, IoU "
            "tracker, default scorer on emulate, default chooser, top-k 1). Record size = the sealed file on disk; peak = the largest "
            "Python-tracked memory during the run (tracemalloc, numpy buffers included). The chooser keeps the "
            "evidence images of its candidates only -- the top k, or with the default ranker (frontal-calibrated) "
            "the crops that can still win once the track's scale is known, at most "
            f"{PARETO_CAP} -- never the whole track (tests/daemon/test_choose.py checks that the rest are freed).\n\n"
            + report.markdown_table(["records hold", "records", "mean size (KB)", "largest (KB)",
                                     "peak traced memory (MB)", "frames/s (traced)"], rows))
    report.replace_section(args.results, "evidence", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
