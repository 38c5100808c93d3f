"""`snapseal ls | verify | purge`: work with sealed records, public information only (format in
docs/FORMAT.md; `snapseal open` is investigator/cli.py).

    snapseal ls DIR [--json]                      every file's verdict and plaintext header
    snapseal verify DIR|RECORD... [--trust device.pub ...] [--trust-file FILE]
                                                  structure + device signature + sequence gaps
    snapseal purge DIR [--now ISO] [--dry-run] [--retention-days D]
                                                  delete records whose expiry has passed

`ls`, `verify`, `open` and `purge` give a record file the same verdict (daemon/records/verify.py
``check_file``): ``ok`` (with a note when its file name is not its record id), or one reason
word. `verify` reports each bad record on one line (``snapseal: FILE: tampered: ...``), carries
on, reports sequence numbers missing between records still present, and exits 1 if anything
failed or is missing. Without a trust set it proves a record is intact and names the device key
that signed it; with ``--trust``/``--trust-file`` also that the key is one you trust. Text from a
record is printed with control characters escaped.
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
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.records import store
from snapseal.daemon.records.layout import RecordError, iso_utc, printable
from snapseal.daemon.records.verify import check_file, sequence_findings


def _load_trusted(paths: list[Path] | None, trust_file: Path | None = None) -> list[keys.DevicePublicKey] | None:
    """The trust set from --trust files and/or a trust file; None when neither was given."""
    if not paths and trust_file is None:
        return None
    trusted = [keys.load_device_public(path) for path in paths or []]
    if trust_file is not None:
        trusted += [key for key, _ in keys.load_trust_file(trust_file)]
    return trusted


def _record_files(paths: list[Path]) -> list[Path]:
    for path in paths:
        if not path.exists():
            raise SnapsealError(f"{path}: no such record or directory")
    files = store.record_files(paths)
    if not files:
        raise SnapsealError(f"{', '.join(map(str, paths))}: no records (*.snap) found")
    return files


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
        raise SnapsealError(f"--now {printable(text)!r}: not an ISO 8601 time (e.g. 2026-12-01T00:00:00Z)") from None
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
            row = {"file": str(stored.path), "size": stored.size, "error": stored.error, "note": stored.note or None}
            if stored.header is not None:
                row.update(stored.header.summary())
                row["expired"] = stored.header.is_expired(now)
            rows.append(row)
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'record id':32}  {'seq':>6}  {'created (UTC)':24}  {'expires (UTC)':24}  {'bytes':>7}  {'device key':16}  "
          f"{'recipient key':16}  status")
    for stored in listing:
        header = stored.header
        if header is None or stored.error:
            name = printable(stored.path.name)[:32]
            print(f"{name:32}  {'?':>6}  {'?':24}  {'?':24}  {stored.size:7d}  {'?':16}  {'?':16}  {printable(stored.error or '')}")
            continue
        status = "expired" if header.is_expired(now) else "sealed"
        if stored.note:
            status += f" ({stored.note})"
        print(f"{header.record_id:32}  {header.sequence:6d}  {iso_utc(header.created):24}  {iso_utc(header.expires):24}  "
              f"{stored.size:7d}  {header.device_key_id:16}  {header.recipient_key_id:16}  {status}")
    bad = sum(1 for s in listing if s.error)
    print(f"{len(listing)} records in {args.dir}" + (f", {bad} unreadable" if bad else ""))
    return 0


# ---------------------------------------------------------------- verify


def _verify(args: argparse.Namespace) -> int:
    trusted = _load_trusted(args.trust, args.trust_file)
    files = _record_files(args.records)
    now = time.time()
    good = failed = 0
    headers = []
    seen: dict[str, Path] = {}
    for path in files:
        verdict = check_file(path, trusted)
        if verdict.error is not None:
            _report(verdict.error)
            failed += 1
            continue
        header = verdict.header
        assert header is not None
        good += 1
        notes = "  (expired)" if header.is_expired(now) else ""
        if verdict.note:  # intact, but not where the store put it: worth a word
            notes += f"  ({verdict.note})"
        if header.record_id in seen:
            notes += f"  (the same record as {printable(str(seen[header.record_id]))})"
        else:
            seen[header.record_id] = path
            headers.append(header)
        print(f"ok  {header.record_id}  seq {header.sequence}  device {header.device_key_id}"
              f"{' (trusted)' if trusted else ''}  recipient {header.recipient_key_id}  "
              f"expires {iso_utc(header.expires)}{notes}")
    findings = sequence_findings(headers, now)
    for finding in findings:
        print(f"{finding.kind}  {finding.text}")
    print(f"verified {len(files)} records: {good} ok, {failed} failed"
          + (f", {len(findings)} sequence finding(s)" if findings else "")
          + ("" if trusted else " (device keys not checked against a trust set)"))
    return 1 if failed or findings else 0


# ---------------------------------------------------------------- purge


def _purge(args: argparse.Namespace) -> int:
    now = _parse_now(args.now)
    if args.retention_days is not None and not 0 < args.retention_days <= 36500:
        raise SnapsealError(f"--retention-days {args.retention_days}: must be in (0, 36500]")
    retention_s = args.retention_days * 86400.0 if args.retention_days is not None else None
    if args.dry_run:
        due = [s for s in store.list_headers(args.dir)
               if (s.error is None and s.header is not None and s.header.is_expired(now))
               or (s.error is not None and retention_s is not None and s.mtime_ns and now - s.mtime_ns / 1e9 >= retention_s)]
    else:
        due = store.purge_expired(args.dir, now, retention_s)
    verb = "would delete" if args.dry_run else "deleted"
    for stored in due:
        if stored.error is None and stored.header is not None:
            print(f"{verb} {stored.header.record_id}  (expired {iso_utc(stored.header.expires)})")
        else:
            print(f"{verb} {printable(stored.path.name)}  (does not verify: {printable(stored.error or '')}; "
                  f"older than the retention period)")
    left = store.list_headers(args.dir)
    unverified = sum(1 for s in left if s.error)
    print(f"{verb} {len(due)} expired records from {args.dir} (as of {iso_utc(now)}); {len(left)} files left"
          + (f", {unverified} unreadable (left in place; see snapseal ls)" if unverified else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    ls = subparsers.add_parser("ls", help="list records: verdict and plaintext header (no key needed)",
                               description="List the records in DIR: each file's verdict (the device signature "
                                           "is checked) and its plaintext header; nothing is decrypted.")
    ls.add_argument("dir", type=Path, metavar="DIR")
    ls.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    ls.set_defaults(func=_ls)

    verify = subparsers.add_parser("verify", help="check record structure, device signatures and sequence (no key)",
                                   description="Check magic, version, length and the device's signature over "
                                               "header + ciphertext, with public information only, and report "
                                               "sequence numbers missing between the records given: proves which "
                                               "device key made a record and that nothing was altered; cannot "
                                               "look inside the sealed crop.")
    verify.add_argument("records", nargs="+", type=Path, metavar="DIR|RECORD")
    verify.add_argument("--trust", type=Path, action="append", metavar="DEVICE.pub",
                        help="also require the signing device to be one of these (repeatable)")
    verify.add_argument("--trust-file", dest="trust_file", type=Path, metavar="FILE",
                        help="also require the signing device to be in this trust file (trusted-devices.json)")
    verify.set_defaults(func=_verify)

    purge = subparsers.add_parser("purge", help="delete expired records",
                                  description="Delete the records in DIR whose verified header expiry is at or "
                                              "before now; with --retention-days also files that do not verify "
                                              "and are older than that.")
    purge.add_argument("dir", type=Path, metavar="DIR")
    purge.add_argument("--now", metavar="ISO", help="pretend it is this time (ISO 8601; no offset = UTC)")
    purge.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    purge.add_argument("--retention-days", dest="retention_days", type=float, metavar="D",
                       help="also delete files that do not verify once older than D days (the camera's retention)")
    purge.set_defaults(func=_purge)


__all__ = ["register", "RecordError"]
