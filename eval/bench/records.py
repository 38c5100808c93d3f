"""Benchmark of the record path: seal + atomic write (fsync) rate of 64x64 crops, open rate,
record size and overhead per record (`make bench-records`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from snapseal.daemon.keys import DeviceKeyPair, InvestigatorKeyPair
from snapseal.daemon.records.layout import RECORD_SUFFIX
from snapseal.daemon.records.seal import CropMeta, RecordSealer, encode_png
from snapseal.daemon.records.store import RecordStore
from snapseal.investigator.open import open_record


def benchmark(count: int, directory: Path, crop_size: int = 64) -> dict[str, float]:
    """Seal + write ``count`` records of a ``crop_size``² gray crop; print and return rates."""

    investigator = InvestigatorKeyPair.generate()
    sealer = RecordSealer(investigator.public, DeviceKeyPair.generate(), "bench-cam", retention=3600.0)
    rng = np.random.default_rng(0)
    # A face-like crop: smooth shading plus sensor noise (pure noise would not compress at all).
    yy, xx = np.mgrid[0:crop_size, 0:crop_size]
    base = 128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 11.0)
    crops = [np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8) for _ in range(16)]
    metas = [CropMeta(track_id=i, frame_time=time.time(), box=(100.0, 80.0, 164.0, 144.0), score=-1234.5,
                      scorer="default", model_id="bench-model") for i in range(count)]
    store = RecordStore(directory, quota_bytes=1 << 40)

    start = time.perf_counter()
    records = [sealer.seal(crops[i % len(crops)], metas[i]) for i in range(count)]
    seal_s = time.perf_counter() - start
    start = time.perf_counter()
    for record in records:
        store.write(record)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    for record in records[: min(count, 200)]:
        open_record(record, investigator)
    open_s = (time.perf_counter() - start) / min(count, 200) * count

    png_bytes = float(np.mean([len(encode_png(crops[i % len(crops)])) for i in range(count)]))
    record_bytes = float(np.mean([len(r) for r in records]))
    result = {
        "records": count,
        "seal_per_s": count / seal_s,
        "write_per_s": count / write_s,
        "seal_and_write_per_s": count / (seal_s + write_s),
        "open_per_s": count / open_s,
        "mean_png_bytes": png_bytes,
        "mean_record_bytes": record_bytes,
        "overhead_bytes": record_bytes - png_bytes,
    }
    print(f"{count} records of {crop_size}x{crop_size} gray into {directory}")
    print(f"seal            {result['seal_per_s']:10.0f} records/s")
    print(f"write (fsync)   {result['write_per_s']:10.0f} records/s")
    print(f"seal + write    {result['seal_and_write_per_s']:10.0f} records/s")
    print(f"open (verify+decrypt+decode) {result['open_per_s']:6.0f} records/s")
    print(f"PNG {png_bytes:.0f} B, record {record_bytes:.0f} B, overhead {result['overhead_bytes']:.0f} B/record")
    for path in store.directory.glob("*" + RECORD_SUFFIX):
        path.unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapseal.eval.bench.records",
                                     description="Benchmark sealing and storing records.")
    parser.add_argument("command", choices=["bench"])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=Path("build/bench-records"))
    parser.add_argument("--crop-size", type=int, default=64)
    args = parser.parse_args(argv)
    benchmark(args.count, args.dir, args.crop_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
