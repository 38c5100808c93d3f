"""Trustees' and auditors' commands: the authority, keyrings, warrants and the opening log.

    snapseal authority init --dir AUTH -k 3 -n 5 --shares-out SHARES
    snapseal authority status --dir AUTH
    snapseal authority expire --dir AUTH                destroy period keys whose records expired
    snapseal authority expire --dir AUTH --camera ID --from now       (revoking a camera)
    snapseal keyring issue --dir AUTH --camera ID [--days 400] [--period-hours 24] [--tz ZONE]
                           [--start DATE] [--retention-days 10] [--share FILE ...] --out keyring.json
    snapseal keyring show keyring.json [--authority AUTH/authority.pub]
    snapseal warrant issue --dir AUTH --camera ID [--camera ID2 ...] --from TIME --to TIME [--tz ZONE]
                           --reference TEXT [--valid-days 30] [--share FILE ...] --out W.warrant
    snapseal warrant show W.warrant
    snapseal log verify [LOG] [--authority AUTH/authority.pub] [--expect-head HASH]
    snapseal log head [LOG]

Without ``--share``, the trustees type (or paste) their shares one at a time at a hidden
prompt; the secret they rebuild lives only in this process's memory. ``snapseal open
--warrant W`` is the investigator's command (investigator/cli.py). docs/SECURITY.md says what
each guarantees.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import date
from pathlib import Path

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.files import write_file_atomically
from snapseal.daemon.keyring import RUNS_OUT, parse_keyring, read_authority_key, utc_text
from snapseal.investigator import authority as auth
from snapseal.investigator import opening_log as olog
from snapseal.investigator import warrant as wr


def _authority(args: argparse.Namespace) -> auth.Authority:
    return auth.Authority(args.dir)


def _read_shares(authority: auth.Authority, paths: list[Path] | None) -> auth.AuthoritySecret:
    """k shares from files, or typed at a hidden prompt (or piped, one mnemonic a line)."""
    if paths:
        return authority.unlock_files(paths)
    needed = authority.public.threshold
    mnemonics: list[str] = []
    if sys.stdin.isatty():
        print(f"authority {authority.public.authority_id}: {needed} of {authority.public.count} shares needed",
              file=sys.stderr)
        while len(mnemonics) < needed:
            text = getpass.getpass(f"share {len(mnemonics) + 1} of {needed} (words, hidden): ").strip()
            if not text:
                break
            mnemonics.append(text)
    else:
        for line in sys.stdin:
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                mnemonics.append(stripped)
    if not mnemonics:
        raise SnapsealError("no shares given (use --share FILE or type them at the prompt); nothing done")
    return authority.unlock(mnemonics)


# ---------------------------------------------------------------- authority


def _init(args: argparse.Namespace) -> int:
    public, paths = auth.init_authority(args.dir, args.threshold, args.count, args.shares_out, who=args.who or wr.default_who())
    print(f"authority {public.authority_id}: any {args.threshold} of {args.count} trustees' shares issue keyrings and warrants")
    print(f"  public (give to every camera): {Path(args.dir) / auth.AUTHORITY_PUB_NAME}")
    print(f"  opening log: {Path(args.dir) / auth.LOG_NAME}")
    for path in paths:
        print(f"  share: {path}")
    print(f"hand each share to a different trustee, then delete {args.shares_out} from this machine")
    return 0


def _status(args: argparse.Namespace) -> int:
    authority = _authority(args)
    print(f"authority {authority.public.authority_id} ({authority.public.threshold} of {authority.public.count})")
    for camera_id in authority.cameras():
        entries = authority.read_vault(camera_id)
        live = [e for e in entries if e.sealed is not None]
        line = f"  {camera_id}: {len(entries)} periods, {len(live)} keys kept, {len(entries) - len(live)} destroyed"
        if live:
            line += f"; kept keys cover {utc_text(live[0].start_ms)} to {utc_text(live[-1].end_ms)}"
        print(line)
    return 0


def _expire(args: argparse.Namespace) -> int:
    authority = _authority(args)
    who = args.who or wr.default_who()
    tz = auth.resolve_tz(args.tz) if args.tz else None

    def when(text: str | None, what: str) -> int | None:
        if text is None:
            return None
        return auth.now_ms() if text == "now" else wr.parse_time(text, tz, what)

    from_ms, before_ms = when(args.from_time, "--from"), when(args.before, "--before")
    if (from_ms is not None or before_ms is not None) and not args.camera:
        raise SnapsealError("--from/--before destroy keys of the cameras named by --camera; name at least one")
    destroyed = auth.expire_keys(authority, camera_ids=args.camera or None, before_ms=before_ms, from_ms=from_ms,
                                 who=who)
    cameras = sorted({d.camera_id for d in destroyed})
    print(f"destroyed {len(destroyed)} period key(s)" + (f" of {', '.join(cameras)}" if cameras else "")
          + "; their records can no longer be opened by anyone")
    return 0


# ---------------------------------------------------------------- keyrings


def _keyring_issue(args: argparse.Namespace) -> int:
    authority = _authority(args)
    if args.out.exists() and not args.force:
        raise SnapsealError(f"{args.out}: exists; refusing to overwrite (use --force)")
    start = None
    if args.start is not None:
        try:
            start = date.fromisoformat(args.start)
        except ValueError:
            raise SnapsealError(f"--start {args.start!r}: give a date, YYYY-MM-DD") from None
    period_s = int(round(args.period_hours * 3600))
    with _read_shares(authority, args.share) as secret:
        issued = auth.issue_keyring(authority, secret, args.camera, days=args.days, start_day=start, period_s=period_s,
                                    tz_name=args.tz, retention_days=args.retention_days,
                                    who=args.who or wr.default_who())
    try:
        write_file_atomically(args.out, issued.blob, mode=0o644, overwrite=args.force)
    except OSError as error:
        raise SnapsealError(f"{args.out}: cannot write the keyring: {error.strerror or error}") from None
    print(f"keyring {issued.keyring_id} for camera {issued.camera_id}: {issued.periods} periods "
          f"({issued.new_keys} new keys) {utc_text(issued.start_ms)} to {utc_text(issued.end_ms)}, "
          f"{len(issued.blob)} bytes -> {args.out}")
    print(f"install it on the camera as [keys] keyring, with {Path(args.dir) / auth.AUTHORITY_PUB_NAME} as "
          f"[keys] keyring_authority")
    return 0


def _keyring_show(args: argparse.Namespace) -> int:
    try:
        blob = args.keyring.read_bytes()
    except OSError as error:
        raise SnapsealError(f"{args.keyring}: cannot read: {error.strerror or error}") from None
    keyring = parse_keyring(blob, str(args.keyring))
    if args.authority is not None and keyring.authority_key != read_authority_key(args.authority):
        raise SnapsealError(f"{args.keyring}: not signed by the authority in {args.authority}")
    print(keyring.describe())
    print(keyring.status())
    print(RUNS_OUT)
    return 0


# ---------------------------------------------------------------- warrants


def _warrant_issue(args: argparse.Namespace) -> int:
    authority = _authority(args)
    start_ms, end_ms = wr.parse_window(args.start, args.end, args.tz)
    if args.out.exists():
        raise SnapsealError(f"{args.out}: exists; refusing to overwrite a warrant")
    with _read_shares(authority, args.share) as secret:
        warrant, notes = wr.issue_warrant(authority, secret, args.camera, start_ms, end_ms, args.reference, args.out,
                                          valid_days=args.valid_days, who=args.who)
    for note in notes:
        print(f"snapseal: note: {note}", file=sys.stderr)
    print(f"{warrant.describe()}: {len(warrant.keys)} period key(s), valid until "
          f"{utc_text(warrant.valid_until_ms)} -> {args.out} (0600)")
    print("hand it to the investigator over a private channel; it opens with 'snapseal open --warrant'")
    return 0


def _warrant_show(args: argparse.Namespace) -> int:
    authority_key = read_authority_key(args.authority) if args.authority is not None else None
    warrant = wr.load_warrant(args.warrant, authority_key, check_expiry=False)
    expired = auth.now_ms() >= warrant.valid_until_ms
    print(warrant.describe() + ("  (EXPIRED: opens nothing)" if expired else ""))
    print(f"  issued {utc_text(warrant.public['issued_ms'])} by {warrant.public['issued_by']}, valid until "
          f"{utc_text(warrant.valid_until_ms)}, authority {warrant.public['authority_id']}")
    for period in sorted(warrant.periods.values(), key=lambda p: (p.camera_id, p.start_ms)):
        print(f"  {period.camera_id}  {utc_text(period.start_ms)} to {utc_text(period.end_ms)}  key {period.key_id}"
              f"  (records expire {utc_text(period.expires_ms)})")
    return 0


# ---------------------------------------------------------------- the log


def _log_authority(args: argparse.Namespace) -> bytes:
    path = args.authority if args.authority is not None else args.log.parent / auth.AUTHORITY_PUB_NAME
    if not path.exists():
        raise SnapsealError(f"{path}: not found; give the authority's public key with --authority")
    return read_authority_key(path)


def _log_verify(args: argparse.Namespace) -> int:
    check = olog.verify_log(args.log, _log_authority(args))
    if not check.ok:
        print(f"{args.log}: entry {check.bad_entry} is bad: {check.reason} ({check.entries} entries before it "
              f"check out)")
        return 1
    if args.expect_head is not None and args.expect_head not in check.hashes:
        print(f"{args.log}: the published head {args.expect_head} is not in this log: entries were cut off or "
              f"the log was rewritten")
        return 1
    print(f"{args.log}: ok, {check.entries} entries, chain and signatures check out; head {check.head}")
    return 0


def _log_head(args: argparse.Namespace) -> int:
    print(olog.log_head(args.log))
    return 0


# ---------------------------------------------------------------- registration


def _who(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--who", help="name written into the opening log (default: user@host)")


def _shares(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--share", type=Path, action="append", metavar="FILE",
                        help="a trustee's share file (repeat k times); without it, shares are asked for at a prompt")


def register(subparsers: argparse._SubParsersAction) -> None:
    if "warrant" in subparsers.choices:
        return
    authority = subparsers.add_parser("authority", help="the trustees' authority: init, status, expire keys",
                                      description="The authority's secret is held k-of-n by trustees (SLIP-39).")
    actions = authority.add_subparsers(dest="authority_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="make the authority secret, its k-of-n shares and the opening log")
    init.add_argument("--dir", type=Path, required=True, help="authority directory (public file, vault, log)")
    init.add_argument("-k", dest="threshold", type=int, required=True, help="shares needed (>= 2)")
    init.add_argument("-n", dest="count", type=int, required=True, help="shares made (<= 16)")
    init.add_argument("--shares-out", type=Path, required=True, metavar="DIR", help="where the share files go")
    _who(init)
    init.set_defaults(func=_init)
    status = actions.add_parser("status", help="cameras, periods, keys kept and destroyed")
    status.add_argument("--dir", type=Path, required=True)
    status.set_defaults(func=_status)
    expire = actions.add_parser("expire", help="destroy the period keys whose records have expired",
                                description="Deletes from the vault every period key whose period ended more than "
                                            "the retention ago (or, with --camera and --from/--before, every key of "
                                            "those cameras in that span: revocation). Needs no shares; cannot be undone.")
    expire.add_argument("--dir", type=Path, required=True)
    expire.add_argument("--camera", action="append", help="only this camera (repeatable)")
    expire.add_argument("--from", dest="from_time", metavar="TIME",
                        help="revoke: destroy the camera's keys of every period ending after TIME ('now' or ISO 8601)")
    expire.add_argument("--before", metavar="TIME", help="destroy the camera's keys of periods starting before TIME")
    expire.add_argument("--tz", help="time zone for a --before without an offset")
    _who(expire)
    expire.set_defaults(func=_expire)

    keyring = subparsers.add_parser("keyring", help="issue or show a camera's keyring of period public keys")
    kactions = keyring.add_subparsers(dest="keyring_command", metavar="ACTION", required=True)
    issue = kactions.add_parser("issue", help="signed public keys of a camera's coming periods (needs k shares)")
    issue.add_argument("--dir", type=Path, required=True, help="authority directory")
    issue.add_argument("--camera", required=True, help="the camera id ([camera] camera_id in its config)")
    issue.add_argument("--days", type=int, default=400, help="days of periods from --start (default 400)")
    issue.add_argument("--start", help="first day, YYYY-MM-DD (default: today in --tz)")
    issue.add_argument("--period-hours", type=float, default=24.0, help="period length (default 24: a day)")
    issue.add_argument("--tz", help="periods follow this zone's local midnight (default UTC)")
    issue.add_argument("--retention-days", type=float, default=10.0,
                       help="the camera's [store] retention_days: keys are destroyed this long after their period")
    issue.add_argument("--out", type=Path, required=True, help="keyring file to write")
    issue.add_argument("--force", action="store_true", help="overwrite --out")
    _shares(issue)
    _who(issue)
    issue.set_defaults(func=_keyring_issue)
    show = kactions.add_parser("show", help="check a keyring's signature and say what it covers")
    show.add_argument("keyring", type=Path)
    show.add_argument("--authority", type=Path, help="authority.pub it must be signed by")
    show.set_defaults(func=_keyring_show)

    warrant = subparsers.add_parser("warrant", help="issue or show a warrant (keys for cameras and one window)")
    wactions = warrant.add_subparsers(dest="warrant_command", metavar="ACTION", required=True)
    wissue = wactions.add_parser("issue", help="write a warrant file for cameras and a time window (needs k shares)")
    wissue.add_argument("--dir", type=Path, required=True, help="authority directory")
    wissue.add_argument("--camera", action="append", required=True, help="camera id (repeatable)")
    wissue.add_argument("--from", dest="start", required=True, help="window start, ISO 8601 (inclusive)")
    wissue.add_argument("--to", dest="end", required=True, help="window end, ISO 8601 (exclusive)")
    wissue.add_argument("--tz", help="time zone for times without an offset (e.g. Europe/Brussels)")
    wissue.add_argument("--reference", required=True, help="the warrant's reference text (court, case number)")
    wissue.add_argument("--valid-days", type=float, default=wr.DEFAULT_VALID_DAYS,
                        help=f"days the warrant can be used (default {wr.DEFAULT_VALID_DAYS})")
    wissue.add_argument("--out", type=Path, required=True, help="warrant file to write (0600)")
    _shares(wissue)
    _who(wissue)
    wissue.set_defaults(func=_warrant_issue)
    wshow = wactions.add_parser("show", help="check a warrant and list what it covers")
    wshow.add_argument("warrant", type=Path)
    wshow.add_argument("--authority", type=Path, help="authority.pub it must be signed by")
    wshow.set_defaults(func=_warrant_show)

    log = subparsers.add_parser("log", help="check the opening log or print its head")
    lactions = log.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    verify = lactions.add_parser("verify", help="check the chain and signatures; name the first bad entry")
    verify.add_argument("log", type=Path, nargs="?", default=Path(auth.LOG_NAME))
    verify.add_argument("--authority", type=Path, help="authority.pub (default: beside the log)")
    verify.add_argument("--expect-head", help="a head published earlier: it must be in this log")
    verify.set_defaults(func=_log_verify)
    head = lactions.add_parser("head", help="one line to publish: entries and the hash of the last one")
    head.add_argument("log", type=Path, nargs="?", default=Path(auth.LOG_NAME))
    head.set_defaults(func=_log_head)

