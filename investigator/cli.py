"""The investigator's commands: everything that needs the investigator's private key.

    snapseal open DIR|RECORD... --key investigator.key --out OUT [--trust device.pub ...]
                   [--trust-file FILE] [--allow-untrusted]
                                                  verify + decrypt: OUT/<id>.png (the scored crop),
                                                  OUT/<id>-<role>-<nn>.png, OUT/<id>.json
    snapseal key split --key investigator.key -k 2 -n 3 --out SHARES_DIR [--force]
    snapseal key combine SHARE_FILE... --out investigator.key [--force]

``register(subparsers)`` adds them like the daemon's CLI modules (daemon/cli/); it is idempotent,
and adds ``split``/``combine`` to the ``key`` group daemon/cli/keys.py made, when there is one.
`open` reports each bad record on one line, skips it, carries on, and exits 1 if any failed;
it writes only inside ``--out``, with names made from the record id and the image role (a closed
set), never from other record text. Trust by default: only records of the devices in the trust
file beside the key (``trusted-devices.json``, written when a camera is provisioned: `snapseal
keygen --device --trusted-by KEYDIR` or `snapseal trust add`) open; ``--trust`` replaces that
set; opening a record of any other device takes ``--allow-untrusted`` and is noted per record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from snapseal.daemon import files, keys
from snapseal.daemon.cli.records import _load_trusted, _record_files, _report
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.records.layout import (
    KeyRefusedError,
    RecordError,
    UntrustedDeviceError,
    image_file_name,
    iso_utc,
    printable,
)
from snapseal.daemon.records.verify import read_record_file as _read
from snapseal.investigator import custody
from snapseal.investigator.open import KeySource, SingleKey, open_record


OPEN_PARSERS: dict[int, argparse.ArgumentParser] = {}


def open_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The `open` subparser registered on ``subparsers``, for modules that add a key source:
    ``open_parser(sp).add_argument("--warrant", ...)`` and append ``make(args) -> KeySource | None``
    to ``open_parser(sp).get_default("key_sources")``. The first source that returns one is used;
    without any, ``--key`` is required."""
    return OPEN_PARSERS[id(subparsers)]


def _write_private(path: Path, data: bytes, out: Path) -> None:
    """Write one opened file inside ``out`` (0600, atomic); a name can't leave ``out``."""
    if path.parent.resolve() != out.resolve() or path.name in ("", ".", ".."):
        raise SnapsealError(f"{printable(str(path))}: refusing to write outside {out}")
    files.write_file_atomically(path, data, mode=0o600, overwrite=True)


def _key_source(args: argparse.Namespace) -> tuple[KeySource, Path | None]:
    """--key (today's single investigator key) or --warrant (investigator/warrant.py), exactly one;
    checked before anything is read or written."""
    from snapseal.investigator import warrant as warrant_mod

    makers = [warrant_mod.key_source_from_args, *(args.key_sources or [])]
    other = getattr(args, "warrant", None) is not None
    if other and args.key is not None:
        raise SnapsealError("give --key investigator.key or --warrant W, not both")
    for make in makers:
        source = make(args)
        if source is not None:
            return source, getattr(args, "warrant", None)  # its trust file is beside the warrant
    if args.key is None:
        raise SnapsealError("give --key investigator.key or --warrant W")
    return SingleKey(keys.load_investigator_private(args.key)), args.key


def _trust_for_open(args: argparse.Namespace, key_path: Path | None) -> tuple[list[keys.DevicePublicKey] | None, str]:
    """(trusted device keys, where they came from). Default: the trust file beside the key."""
    if args.trust or args.trust_file:
        return _load_trusted(args.trust, args.trust_file), "--trust"
    if key_path is not None:
        beside = keys.trust_file_beside(key_path)
        if beside.exists():
            return [key for key, _ in keys.load_trust_file(beside)], str(beside)
        if not args.allow_untrusted:
            raise SnapsealError(f"{beside}: no trusted devices for this key; add each camera's device.pub with "
                                f"`snapseal trust add --key {key_path} DEVICE.pub` (done by `snapseal keygen --device "
                                f"--trusted-by {key_path.parent}`), pass --trust DEVICE.pub, or open records of "
                                f"unknown devices on purpose with --allow-untrusted")
        return None, "nothing"
    if not args.allow_untrusted:
        raise SnapsealError("open needs a trust set: --trust DEVICE.pub or --trust-file FILE (or --allow-untrusted)")
    return None, "nothing"


def _open_one(path: Path, key_source: KeySource, trusted: list[keys.DevicePublicKey] | None, allow_untrusted: bool,
              out: Path, seen: dict[str, Path]) -> tuple[str, list[str]] | None:
    """Open and write one record; raise RecordError/SnapsealError for this record only."""
    data = _read(path)
    untrusted_by_choice = False
    try:
        record = open_record(data, key_source, trusted, source=path)
    except UntrustedDeviceError:
        if not allow_untrusted:
            raise
        record = open_record(data, key_source, None, source=path)
        untrusted_by_choice = True
    record_id = record.header.record_id
    if record_id in seen:
        raise RecordError(path, f"the same record as {printable(str(seen[record_id]))}, already opened; skipped")
    names = [image_file_name(record_id, index, image.info or image) for index, image in enumerate(record.images)]
    summary = record.summary(names)
    summary["source"] = str(path)
    summary["device_trusted"] = trusted is not None and not untrusted_by_choice
    if untrusted_by_choice:
        summary["opened_untrusted_by_choice"] = True
    on_opened = getattr(key_source, "on_opened", None)
    if on_opened is not None:
        on_opened(record)  # the opening log: no entry, no files
    written: list[Path] = []
    try:
        for name, image in zip(names, record.images):
            _write_private(out / name, image.png, out)  # the camera's own lossless PNG bytes
            written.append(out / name)
        _write_private(out / f"{record_id}.json", (json.dumps(summary, indent=1) + "\n").encode("utf-8"), out)
    except OSError as error:
        for done in written:  # nothing half-written for this record
            try:
                done.unlink()
            except OSError:
                pass
        raise RecordError(path, f"cannot write into {out}: {error.strerror or error}") from None
    seen[record_id] = path
    notes = []
    if path.name != record.header.file_name:
        notes.append(f"file name is not {record.header.file_name}")
    if record.provisional:
        notes.append("provisional: the track was still in view")
    if untrusted_by_choice:
        print(f"snapseal: note: opened {record_id} from untrusted device {record.header.device_key_id} "
              f"(--allow-untrusted)", file=sys.stderr)
    print(f"{record_id}  camera {printable(record.camera_id)}  track {record.meta.track_id}  "
          f"frame {iso_utc(record.meta.frame_time)}  device {record.header.device_key_id}  "
          f"images {len(names)}  -> {out / names[0]}" + "".join(f"  ({note})" for note in notes))
    return record_id, names


def _open(args: argparse.Namespace) -> int:
    key_source, key_path = _key_source(args)
    trusted, trust_origin = _trust_for_open(args, key_path)
    paths = _record_files(args.records)
    out: Path = args.out
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)  # opened crops are personal data
    except OSError as error:
        raise SnapsealError(f"{out}: cannot create: {error.strerror or error}") from None
    from snapseal.investigator.warrant import NotCoveredError

    opened = failed = not_covered = 0
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            _open_one(path, key_source, trusted, args.allow_untrusted, out, seen)
        except (NotCoveredError, KeyRefusedError) as error:  # a warrant covers only some records
            _report(error)
            not_covered += 1
            continue
        except SnapsealError as error:  # any RecordError or a failed log entry: this record only
            _report(error)
            failed += 1
            continue
        opened += 1
    if trusted is None and opened:
        print("snapseal: note: device keys were not checked against a trust set (add --trust device.pub)", file=sys.stderr)
    print(f"opened {opened} of {len(paths)} records into {out}" + (f"; {failed} failed" if failed else "")
          + (f"; {not_covered} not covered by the warrant" if not_covered else "")
          + (f" (trusted devices: {trust_origin})" if trusted is not None else ""))
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
    opener.add_argument("--key", type=Path, metavar="KEY",
                        help="investigator private key file (its trust file trusted-devices.json beside it is used)")
    opener.add_argument("--out", type=Path, required=True, metavar="OUT", help="directory for the opened crops")
    opener.add_argument("--trust", type=Path, action="append", metavar="DEVICE.pub",
                        help="accept only records signed by this device key (repeatable; instead of the trust file)")
    opener.add_argument("--trust-file", dest="trust_file", type=Path, metavar="FILE",
                        help="accept only records of the devices in this trust file")
    opener.add_argument("--allow-untrusted", dest="allow_untrusted", action="store_true",
                        help="also open records of devices not trusted (each one is noted on stderr and in its JSON)")
    from snapseal.investigator import warrant as warrant_mod

    warrant_mod.add_open_arguments(opener)  # --warrant W (instead of --key), --log, --authority, --who
    opener.set_defaults(func=_open, key_sources=[])
    OPEN_PARSERS[id(subparsers)] = opener


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

