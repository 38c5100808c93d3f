"""The investigator's commands: everything that needs the investigator's private key.

    snapseal open DIR|RECORD... --key investigator.key --out OUT [--trust device.pub ...]
                                                  verify + decrypt: OUT/<id>.png, OUT/<id>.json
    snapseal key split --key investigator.key -k 2 -n 3 --out SHARES_DIR [--force]
    snapseal key combine SHARE_FILE... --out investigator.key [--force]

``register(subparsers)`` adds them like the daemon's CLI modules (daemon/cli/); it is idempotent,
and adds ``split``/``combine`` to the ``key`` group daemon/cli/keys.py made, when there is one.
`open` reports each bad record on one line, skips it, carries on, and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from snapseal.daemon import files, keys
from snapseal.daemon.cli.records import _load_trusted, _read, _record_files, _report
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.records.layout import RecordError, iso_utc
from snapseal.investigator import custody
from snapseal.investigator.open import open_record


def _write_private(path: Path, data: bytes) -> None:
    try:
        files.write_file_atomically(path, data, mode=0o600, overwrite=True)
    except OSError as error:
        raise SnapsealError(f"{path}: cannot write: {error.strerror or error}") from None


def _open(args: argparse.Namespace) -> int:
    investigator = keys.load_investigator_private(args.key)
    trusted = _load_trusted(args.trust)
    files = _record_files(args.records)
    out: Path = args.out
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)  # opened crops are personal data
    except OSError as error:
        raise SnapsealError(f"{out}: cannot create: {error.strerror or error}") from None
    opened = failed = 0
    for path in files:
        try:
            record = open_record(_read(path), investigator, trusted, source=path)
        except RecordError as error:
            _report(error)
            failed += 1
            continue
        record_id = record.header.record_id
        summary = record.summary()
        summary["source"] = str(path)
        names = []
        for index, image in enumerate(record.images):
            name = f"{record_id}.png" if index == 0 else f"{record_id}-{image.role}-{index:02d}.png"
            _write_private(out / name, image.png)  # the camera's own lossless PNG bytes
            names.append(name)
        for description, name in zip(summary["images"], names):
            description["file"] = name
        _write_private(out / f"{record_id}.json", (json.dumps(summary, indent=1) + "\n").encode("utf-8"))
        opened += 1
        print(f"{record_id}  camera {record.camera_id}  track {record.meta.track_id}  "
              f"frame {iso_utc(record.meta.frame_time)}  device {record.header.device_key_id}  -> {out / names[0]}")
    if trusted is None and opened:
        print("snapseal: note: device keys were not checked against a trust set (add --trust device.pub)", file=sys.stderr)
    print(f"opened {opened} of {len(files)} records into {out}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0



def _split(args: argparse.Namespace) -> int:
    pair = keys.load_investigator_private(args.key)
    paths = custody.write_shares(pair, args.threshold, args.count, args.out, force=args.force)
    print(f"split investigator key {pair.key_id} into {args.count} SLIP-39 shares; any {args.threshold} rebuild it:")
    for path in paths:
        print(f"  {path}")
    print(f"give each share to a different custodian, then remove {args.key} from this machine")
    return 0


def _combine(args: argparse.Namespace) -> int:
    pair = custody.combine_share_files(args.shares)
    path = keys.save_investigator_private(pair, args.out, force=args.force)
    print(f"rebuilt investigator key {pair.key_id}: {path} (0600)")
    return 0



def register(subparsers: argparse._SubParsersAction) -> None:
    if "open" in subparsers.choices:
        return
    opener = subparsers.add_parser("open", help="verify and decrypt records with the investigator key",
                                   description="Verify each record's device signatures, decrypt it, write "
                                               "OUT/<record-id>.png and OUT/<record-id>.json. Bad records are "
                                               "reported, skipped, and make the exit code 1.")
    opener.add_argument("records", nargs="+", type=Path, metavar="DIR|RECORD")
    opener.add_argument("--key", type=Path, required=True, metavar="KEY", help="investigator private key file")
    opener.add_argument("--out", type=Path, required=True, metavar="OUT", help="directory for the opened crops")
    opener.add_argument("--trust", type=Path, action="append", metavar="DEVICE.pub",
                        help="accept only records signed by this device key (repeatable)")
    opener.set_defaults(func=_open)


    from snapseal.daemon.cli.keys import KEY_ACTIONS

    actions = KEY_ACTIONS.get(id(subparsers))
    if actions is None:
        key = subparsers.add_parser("key", help="split / combine the investigator key (SLIP-39 k-of-n)",
                                    description="Key custody: SLIP-39 shares of the investigator private key.")
        actions = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    split = actions.add_parser("split", help="split investigator.key into n shares, any k rebuild it")
    split.add_argument("--key", type=Path, required=True, metavar="FILE", help="investigator private key file")
    split.add_argument("-k", dest="threshold", type=int, required=True, help="shares needed to rebuild (>= 2)")
    split.add_argument("-n", dest="count", type=int, required=True, help="shares to make (<= 16)")
    split.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for share-<i>-of-<n>.txt")
    split.add_argument("--force", action="store_true", help="overwrite existing share files")
    split.set_defaults(func=_split)

    combine = actions.add_parser("combine", help="rebuild investigator.key from k share files")
    combine.add_argument("shares", nargs="+", type=Path, metavar="SHARE_FILE")
    combine.add_argument("--out", type=Path, required=True, metavar="FILE", help="investigator private key to write")
    combine.add_argument("--force", action="store_true", help="overwrite an existing key file")
    combine.set_defaults(func=_combine)

