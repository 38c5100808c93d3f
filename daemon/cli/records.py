"""`snapseal ls | verify | purge`: work with sealed records, public information only (format in
docs/FORMAT.md; `snapseal open` is investigator/cli.py).

    snapseal ls DIR [--json]                      headers only: no key needed, nothing decrypted
    snapseal verify DIR|RECORD... [--trust device.pub ...]
                                                  structure + device signature, public info only
    snapseal purge DIR [--now ISO] [--dry-run]    delete records whose expiry has passed

`verify` reports each bad record on one line (``snapseal: FILE: tampered: ...``),
skip it, carry on, and exit 1 if any record failed. Without ``--trust`` they prove a record is
intact and name the device key that signed it; with it, also that the key is one you trust.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from snapseal.daemon import keys
from snapseal.daemon.records import store
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.records.layout import RecordError, iso_utc
from snapseal.daemon.records.verify import verify_record


def _load_trusted(paths: list[Path] | None) -> list[keys.DevicePublicKey] | None:
    return [keys.load_device_public(path) for path in paths] if paths else None


def _record_files(paths: list[Path]) -> list[Path]:
    for path in paths:
        if not path.exists():
            raise SnapsealError(f"{path}: no such record or directory")
    files = store.record_files(paths)
    if not files:
        raise SnapsealError(f"{', '.join(map(str, paths))}: no records (*.snap) found")
    return files


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise RecordError(path, f"cannot read: {error.strerror or error}") from None


def _report(error: SnapsealError) -> None:
    print(f"snapseal: {error}", file=sys.stderr)


def _parse_now(text: str | None) -> float:
    if text is None:
        return time.time()
    normalized = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Python 3.10's fromisoformat takes only 3 or 6 fraction digits: pad/cut to 6.
    normalized = re.sub(r"(:\d\d)\.(\d+)", lambda m: f"{m.group(1)}.{(m.group(2) + '000000')[:6]}", normalized)
    try:
        moment = datetime.fromisoformat(normalized)
    except ValueError:
        raise SnapsealError(f"--now {text!r}: not an ISO 8601 time (e.g. 2026-12-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # documented: a time without offset is UTC
    return moment.timestamp()


# ---------------------------------------------------------------- ls


def _ls(args: argparse.Namespace) -> int:
    now = time.time()
    listing = store.list_headers(args.dir)
    if args.json:
        rows = []
        for stored in listing:
            row = {"file": str(stored.path), "size": stored.size, "error": stored.error}
            if stored.header is not None:
                row.update(stored.header.summary())
                row["expired"] = stored.header.is_expired(now)
            rows.append(row)
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'record id':32}  {'created (UTC)':24}  {'expires (UTC)':24}  {'bytes':>7}  {'device key':16}  "
          f"{'recipient key':16}  status")
    for stored in listing:
        header = stored.header
        if header is None:
            print(f"{stored.path.name:32}  {'?':24}  {'?':24}  {stored.size:7d}  {'?':16}  {'?':16}  {stored.error}")
            continue
        status = stored.error or ("expired" if header.is_expired(now) else "sealed")
        print(f"{header.record_id:32}  {iso_utc(header.created):24}  {iso_utc(header.expires):24}  {stored.size:7d}  "
              f"{header.device_key_id:16}  {header.recipient_key_id:16}  {status}")
    bad = sum(1 for s in listing if s.error)
    print(f"{len(listing)} records in {args.dir}" + (f", {bad} unreadable" if bad else ""))
    return 0


# ---------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    trusted = _load_trusted(args.trust)
    files = _record_files(args.records)
    now = time.time()
    good = failed = 0
    for path in files:
        try:
            header = verify_record(_read(path), trusted, source=path)
        except RecordError as error:
            _report(error)
            failed += 1
            continue
        good += 1
        expired = "  (expired)" if header.is_expired(now) else ""
        if path.name != header.file_name:  # intact, but not where the store put it: worth a word
            expired += f"  (file name is not {header.file_name})"
        print(f"ok  {header.record_id}  device {header.device_key_id}{' (trusted)' if trusted else ''}  "
              f"recipient {header.recipient_key_id}  expires {iso_utc(header.expires)}{expired}")
    print(f"verified {len(files)} records: {good} ok, {failed} failed"
          + ("" if trusted else " (device keys not checked against a trust set)"))
    return 1 if failed else 0


# ---------------------------------------------------------------- purge


def _purge(args: argparse.Namespace) -> int:
    now = _parse_now(args.now)
    if args.dry_run:
        due = [s for s in store.list_headers(args.dir) if s.header is not None and s.header.is_expired(now)]
    else:
        due = store.purge_expired(args.dir, now)
    verb = "would delete" if args.dry_run else "deleted"
    for stored in due:
        assert stored.header is not None
        print(f"{verb} {stored.header.record_id}  (expired {iso_utc(stored.header.expires)})")
    left = store.list_headers(args.dir)
    unreadable = sum(1 for s in left if s.header is None)
    print(f"{verb} {len(due)} expired records from {args.dir} (as of {iso_utc(now)}); {len(left)} files left"
          + (f", {unreadable} unreadable (left in place; see snapseal ls)" if unreadable else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    ls = subparsers.add_parser("ls", help="list record headers (no key needed)",
                               description="List the plaintext headers of the records in DIR; nothing is decrypted.")
    ls.add_argument("dir", type=Path, metavar="DIR")
    ls.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    ls.set_defaults(func=_ls)

    verify = subparsers.add_parser("verify", help="check record structure and device signatures (no key)",
                                   description="Check magic, version, length and the device's signature over "
                                               "header + ciphertext, with public information only: proves which "
                                               "device key made a record and that nothing was altered; cannot "
                                               "look inside the sealed crop.")
    verify.add_argument("records", nargs="+", type=Path, metavar="DIR|RECORD")
    verify.add_argument("--trust", type=Path, action="append", metavar="DEVICE.pub",
                        help="also require the signing device to be one of these (repeatable)")
    verify.set_defaults(func=_verify)

    purge = subparsers.add_parser("purge", help="delete expired records",
                                  description="Delete the records in DIR whose header expiry is at or before now.")
    purge.add_argument("dir", type=Path, metavar="DIR")
    purge.add_argument("--now", metavar="ISO", help="pretend it is this time (ISO 8601; no offset = UTC)")
    purge.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    purge.set_defaults(func=_purge)

