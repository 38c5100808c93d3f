"""Warrants: the private keys of only the periods that cover some cameras and one time window.

``issue_warrant`` runs with the trustees' secret in memory (k shares): it opens the vault
entries of the requested cameras' periods that overlap the window and writes them, with the
warrant's reference text, into a warrant file signed by the authority. Nothing else opens a
record of a period outside it; the period is the cryptographic granularity. Inside a period
the window is enforced by ``WarrantKeySource``: a record made outside the window is refused
before it is decrypted when its plaintext (coarse) time shows it, else after decryption by its
exact signed time, before anything is written or logged.

Warrant file (JSON, 0600; it holds secrets: keep it like a private key and destroy it after use)::

    {"snapseal_warrant": 1,
     "warrant": {"warrant_id", "reference", "cameras": [...],
                 "window": {"start_ms", "end_ms"},          start inclusive, end exclusive
                 "issued_ms", "valid_until_ms", "issued_by",
                 "authority_id", "authority_key": <b64 Ed25519>,
                 "log_key": <b64 Ed25519 public: signs this warrant's entries in the opening log>,
                 "periods": [{"camera_id", "start_ms", "end_ms", "key_id"}, ...]},
     "signature": <b64: authority Ed25519 over b"snapseal/warrant/v1\\0" + canonical JSON of "warrant">,
     "keys": {"<key_id>": <b64 X25519 private key>, ...},
     "log_seed": <b64 seed of the log key>}

``WarrantKeySource`` is what ``snapseal open --warrant W`` uses (investigator/open.py's key
source): ``key_for(header)`` gives the period key or raises ``NotCoveredError`` (one line) before
anything is decrypted; ``admit(record)`` checks the opened record's signed camera id and exact
creation time; ``on_opened(record)`` appends a ``record-opened`` entry to the opening log
*before* the record is written out (no log entry, no opening).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, Callable, Sequence

import nacl.exceptions
import nacl.public
import nacl.signing

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.files import check_private_file, write_file_atomically
from snapseal.daemon.keyring import b64, canonical_json, strict_json, unb64, utc_text
from snapseal.daemon.keys import InvestigatorKeyPair, key_id_of
from snapseal.investigator.authority import (
    Authority,
    AuthoritySecret,
    check_camera_id,
    local_midnight_ms,
    now_ms,
    resolve_tz,
)
from snapseal.investigator.opening_log import OpeningLog, read_entries

WARRANT_VERSION = 1
WARRANT_DOMAIN = b"snapseal/warrant/v1\x00"
MAX_WARRANT_BYTES = 16 * 1024 * 1024
MAX_VALID_DAYS = 366
DEFAULT_VALID_DAYS = 30
MAX_REFERENCE = 2000
MAX_HEADER_COARSENESS_MS = 86_400_000  # a record header's plaintext time is floored to at most a day
PUBLIC_FIELDS = ("warrant_id", "reference", "cameras", "window", "issued_ms", "valid_until_ms", "issued_by",
                 "authority_id", "authority_key", "log_key", "periods")


class NotCoveredError(SnapsealError):
    """A record this warrant does not cover (another camera, another period, outside the window):
    refused before it is decrypted. Not a fault of the record: ``open`` counts it apart."""


def default_who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


# ---------------------------------------------------------------- times


def parse_time(text: str, tz: tzinfo | None, what: str) -> int:
    """ISO 8601 date or date-time -> ms since the epoch. A time without an offset needs ``tz``;
    a bare date is local midnight in ``tz``."""
    value = str(text).strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if tz is None:
                raise SnapsealError(f"{what} {text!r}: a date needs --tz (e.g. --tz Europe/Brussels or --tz UTC)")
            return local_midnight_ms(day, tz)
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise SnapsealError(f"{what} {text!r}: not an ISO 8601 date or time (e.g. 2026-12-03T14:00+01:00)") from None
    if moment.tzinfo is None:
        if tz is None:
            raise SnapsealError(f"{what} {text!r}: give an offset (…+01:00 or …Z) or --tz")
        moment = moment.replace(tzinfo=tz)
    return int(round(moment.timestamp() * 1000))


def parse_window(start: str, end: str, tz_name: str | None = None) -> tuple[int, int]:
    tz = resolve_tz(tz_name) if tz_name else None
    start_ms, end_ms = parse_time(start, tz, "--from"), parse_time(end, tz, "--to")
    if end_ms <= start_ms:
        raise SnapsealError(f"window {utc_text(start_ms)} to {utc_text(end_ms)}: --to must be after --from")
    return start_ms, end_ms


# ---------------------------------------------------------------- the warrant


def _signed(public: dict) -> bytes:
    return WARRANT_DOMAIN + canonical_json(public)


def verify_warrant_public(public: Any, signature: Any, authority_key: bytes | None) -> dict:
    """Check the authority's signature over a warrant's public part; returns it."""
    if not isinstance(public, dict) or set(public) != set(PUBLIC_FIELDS):
        raise SnapsealError("not a snapseal warrant (fields missing or unknown)")
    try:
        signer = unb64(public["authority_key"], 32, "authority_key")
        nacl.signing.VerifyKey(signer).verify(_signed(public), unb64(signature, 64, "signature"))
    except (ValueError, nacl.exceptions.CryptoError):
        raise SnapsealError("warrant signature does not match (tampered or garbled)") from None
    if authority_key is not None and signer != bytes(authority_key):
        raise SnapsealError(f"warrant signed by authority {key_id_of(signer)}, not by the authority "
                            f"{key_id_of(bytes(authority_key))} given")
    problem = _shape_problem(public)
    if problem:
        raise SnapsealError(f"not a warrant this snapseal reads ({problem})")
    return public


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


PERIOD_FIELDS = {"camera_id": str, "start_ms": int, "end_ms": int, "key_id": str, "expires_ms": int}


def _shape_problem(public: dict) -> str | None:
    """What is wrong with the types of a (signed) warrant's public part, or None."""
    for name in ("warrant_id", "reference", "issued_by", "authority_id", "log_key"):
        if not isinstance(public[name], str):
            return f"{name} is not text"
    for name in ("issued_ms", "valid_until_ms"):
        if not _is_int(public[name]):
            return f"{name} is not an integer"
    window = public["window"]
    if not (isinstance(window, dict) and set(window) == {"start_ms", "end_ms"} and all(map(_is_int, window.values()))):
        return "window is not {start_ms, end_ms}"
    if not (isinstance(public["cameras"], list) and public["cameras"] and all(isinstance(c, str) for c in public["cameras"])):
        return "cameras is not a list of ids"
    if not isinstance(public["periods"], list):
        return "periods is not a list"
    for row in public["periods"]:
        if not (isinstance(row, dict) and set(row) == set(PERIOD_FIELDS)
                and all(_is_int(row[k]) if t is int else isinstance(row[k], t) for k, t in PERIOD_FIELDS.items())):
            return "a period is not {camera_id, start_ms, end_ms, key_id, expires_ms}"
    return None


@dataclass(frozen=True)
class WarrantPeriod:
    camera_id: str
    start_ms: int
    end_ms: int
    key_id: str
    expires_ms: int  # its records have all expired then (the vault destroys its key)


@dataclass(frozen=True)
class Warrant:
    public: dict
    signature: str
    keys: dict[str, InvestigatorKeyPair]  # key id -> period key pair
    log_key: nacl.signing.SigningKey
    source: str = "warrant"

    @property
    def warrant_id(self) -> str:
        return self.public["warrant_id"]

    @property
    def reference(self) -> str:
        return self.public["reference"]

    @property
    def cameras(self) -> list[str]:
        return list(self.public["cameras"])

    @property
    def window(self) -> tuple[int, int]:
        return self.public["window"]["start_ms"], self.public["window"]["end_ms"]

    @property
    def valid_until_ms(self) -> int:
        return self.public["valid_until_ms"]

    @property
    def periods(self) -> dict[str, WarrantPeriod]:
        return {row["key_id"]: WarrantPeriod(row["camera_id"], row["start_ms"], row["end_ms"], row["key_id"],
                                             row["expires_ms"])
                for row in self.public["periods"]}

    def in_window(self, ms: int) -> bool:
        start, end = self.window
        return start <= ms < end

    def describe(self) -> str:
        start, end = self.window
        return (f"warrant {self.warrant_id} {self.reference!r}: camera {', '.join(self.cameras)}, "
                f"{utc_text(start)} to {utc_text(end)}")

    def document(self) -> dict:
        return {"snapseal_warrant": WARRANT_VERSION, "warrant": self.public, "signature": self.signature,
                "keys": {key_id: b64(pair.private_bytes) for key_id, pair in self.keys.items()},
                "log_seed": b64(bytes(self.log_key))}


def issue_warrant(authority: Authority, secret: AuthoritySecret, cameras: Sequence[str], start_ms: int, end_ms: int,
                  reference: str, out: Path | str, valid_days: float = DEFAULT_VALID_DAYS, who: str | None = None,
                  at_ms: int | None = None) -> tuple[Warrant, list[str]]:
    """Write a warrant file to ``out`` (0600, never over an existing file) and log its issue.
    Returns the warrant and notes (periods skipped because their keys were destroyed)."""
    out = Path(out)
    at_ms = now_ms() if at_ms is None else int(at_ms)
    who = who or default_who()
    reference = str(reference).strip()
    if not reference or len(reference) > MAX_REFERENCE or not reference.isprintable():
        raise SnapsealError(f"--reference: give the warrant's reference text (1 to {MAX_REFERENCE} printable "
                            f"characters, one line)")
    if not 0 < float(valid_days) <= MAX_VALID_DAYS:
        raise SnapsealError(f"--valid-days {valid_days}: must be in (0, {MAX_VALID_DAYS}]")
    if not cameras:
        raise SnapsealError("--camera: name at least one camera")
    if int(end_ms) <= int(start_ms):
        raise SnapsealError("window: --to must be after --from")
    if out.exists():
        raise SnapsealError(f"{out}: exists; refusing to overwrite a warrant")
    known = set(authority.cameras())
    cameras = list(dict.fromkeys(check_camera_id(c) for c in cameras))
    notes: list[str] = []
    rows: list[dict] = []
    keys: dict[str, InvestigatorKeyPair] = {}
    for camera_id in cameras:
        if camera_id not in known:
            raise SnapsealError(f"camera {camera_id!r}: this authority never issued it a keyring; nothing written")
        entries = [e for e in authority.read_vault(camera_id) if e.start_ms < end_ms and start_ms < e.end_ms]
        if not entries:
            raise SnapsealError(f"camera {camera_id}: no period key overlaps {utc_text(start_ms)} to "
                                f"{utc_text(end_ms)} (no keyring covered that time); nothing written")
        live = [e for e in entries if e.sealed is not None]
        if not live:
            raise SnapsealError(f"camera {camera_id}: every period key in the window was destroyed at expiry; "
                                f"those records can no longer be opened by anyone; nothing written")
        if len(live) < len(entries):
            notes.append(f"camera {camera_id}: {len(entries) - len(live)} period key(s) in the window were destroyed "
                         f"at expiry and are not in the warrant")
        for entry in live:
            keys[entry.key_id] = InvestigatorKeyPair(authority.unseal(secret, entry, camera_id))
            rows.append({"camera_id": camera_id, "start_ms": entry.start_ms, "end_ms": entry.end_ms,
                         "key_id": entry.key_id, "expires_ms": entry.destroy_after_ms})
    signing = secret.signing_key
    log_key = nacl.signing.SigningKey.generate()
    public = {"warrant_id": secrets.token_hex(8), "reference": reference, "cameras": cameras,
              "window": {"start_ms": int(start_ms), "end_ms": int(end_ms)}, "issued_ms": at_ms,
              "valid_until_ms": min(at_ms + int(float(valid_days) * 86400 * 1000),
                                    max(row["expires_ms"] for row in rows)),  # no use after its records expired
              "issued_by": who,
              "authority_id": authority.public.authority_id, "authority_key": b64(bytes(signing.verify_key)),
              "log_key": b64(bytes(log_key.verify_key)), "periods": rows}
    signature = b64(signing.sign(_signed(public)).signature)
    warrant = Warrant(public, signature, keys, log_key, str(out))
    try:
        write_file_atomically(out, (json.dumps(warrant.document(), indent=1, sort_keys=True) + "\n").encode("ascii"),
                              mode=0o600)
    except FileExistsError:
        raise SnapsealError(f"{out}: exists; refusing to overwrite a warrant") from None
    except OSError as error:
        raise SnapsealError(f"{out}: cannot write the warrant: {error.strerror or error}") from None
    try:
        authority.log.append("warrant-issued", signing, who, warrant_ref=reference, warrant_id=public["warrant_id"],
                             detail={"warrant": public, "signature": signature}, now_ms=at_ms)
    except SnapsealError:
        out.unlink(missing_ok=True)  # no warrant without its log entry
        raise
    return warrant, notes


def load_warrant(path: Path | str, authority_key: bytes | None = None, at_ms: int | None = None,
                 check_expiry: bool = True) -> Warrant:
    """Read and check a warrant file: mode, signature, keys match, not expired."""
    path = Path(path)
    check_private_file(path, "warrant (it holds private keys)")
    try:
        with open(path, "rb") as handle:
            blob = handle.read(MAX_WARRANT_BYTES + 1)
        document = strict_json(blob.decode("utf-8"))
    except FileNotFoundError:
        raise SnapsealError(f"{path}: warrant not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SnapsealError(f"{path}: not a warrant ({getattr(error, 'strerror', None) or 'garbled'})") from None
    if not isinstance(document, dict) or document.get("snapseal_warrant") != WARRANT_VERSION:
        raise SnapsealError(f"{path}: not a snapseal warrant (version {WARRANT_VERSION})")
    try:
        public = verify_warrant_public(document.get("warrant"), document.get("signature"), authority_key)
    except SnapsealError as error:
        raise SnapsealError(f"{path}: {error}; nothing opened") from None
    try:
        log_key = nacl.signing.SigningKey(unb64(document.get("log_seed"), 32, "log_seed"))
        if bytes(log_key.verify_key) != unb64(public["log_key"], 32, "log_key"):
            raise ValueError("log_seed does not match the signed log key")
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, dict):
            raise ValueError("no keys")
        keys = {}
        for key_id, text in raw_keys.items():
            pair = InvestigatorKeyPair.from_private_bytes(unb64(text, 32, f"key {key_id}"))
            if pair.key_id != key_id:
                raise ValueError(f"key {key_id} does not match its id")
            keys[key_id] = pair
        if set(keys) != {row["key_id"] for row in public["periods"]}:
            raise ValueError("its keys are not the periods it was signed for")
    except (ValueError, TypeError, KeyError) as error:
        raise SnapsealError(f"{path}: garbled warrant: {error}; nothing opened") from None
    warrant = Warrant(public, document["signature"], keys, log_key, str(path))
    at_ms = now_ms() if at_ms is None else int(at_ms)
    if check_expiry and at_ms >= warrant.valid_until_ms:
        raise SnapsealError(f"{path}: warrant {warrant.reference!r} expired on {utc_text(warrant.valid_until_ms)}; "
                            f"nothing opened")
    return warrant


# ---------------------------------------------------------------- opening with it


class WarrantKeySource:
    """Key source for opening (``key_for``) plus the opening-log hook (``on_opened``)."""

    def __init__(self, warrant: Warrant, log: OpeningLog, who: str | None = None,
                 clock: Callable[[], int] = now_ms):
        self.warrant = warrant
        self.clock = clock  # ms since the epoch
        self.log = log
        self.who = who or default_who()
        self.periods = warrant.periods
        self.opened: list[str] = []
        self._introduced = False

    def _refuse(self, record: str, why: str) -> NotCoveredError:
        return NotCoveredError(f"{record}: {why}; not covered by {self.warrant.describe()}")

    def key_for(self, header: Any) -> InvestigatorKeyPair:
        """The period key for a record, or NotCoveredError before anything is decrypted: another
        camera or period (a key the warrant does not hold), or a plaintext creation time that
        puts the record outside the window. The plaintext time may be coarse (floored to at most
        a day, docs/FORMAT.md): the exact record was made in [coarse, coarse + 1 day) and inside
        its period; only when that span misses the window is the record refused here. The exact
        signed time is checked by ``admit`` once the record is open, before anything is written."""
        record = getattr(header, "record_id", "record")
        key_id = header.recipient_key_id
        period = self.periods.get(key_id)
        if period is None:
            raise self._refuse(record, f"sealed to key {key_id}, which this warrant does not hold")
        if self.clock() >= period.expires_ms:
            raise self._refuse(record, f"its period's records expired on {utc_text(period.expires_ms)} and its key "
                                       f"is destroyed")
        created_ms = getattr(header, "created_ms", None)
        if created_ms is not None:
            earliest = max(int(created_ms), period.start_ms)
            latest = min(int(created_ms) + MAX_HEADER_COARSENESS_MS, period.end_ms)  # exclusive
            start, end = self.warrant.window
            if earliest >= end:
                raise self._refuse(record, f"made at or after {utc_text(earliest)}, after the window")
            if latest <= start:
                raise self._refuse(record, f"made before {utc_text(latest)}, before the window")
        return self.warrant.keys[key_id]

    def admit(self, record: Any) -> None:
        """Called with the opened, fully checked record: its signed camera id must be the camera of
        its period key and its exact (sealed) creation time inside the window."""
        header = record.header
        period = self.periods.get(header.recipient_key_id)
        if period is None:
            raise self._refuse(header.record_id, f"sealed to key {header.recipient_key_id}, which this warrant "
                                                 f"does not hold")
        camera_id = getattr(record, "camera_id", None)
        if camera_id != period.camera_id:
            raise self._refuse(header.record_id, f"signed camera id {camera_id!r} is not the camera of its period key "
                                                 f"({period.camera_id})")
        if not self.warrant.in_window(int(header.created_ms)):
            raise self._refuse(header.record_id, f"made {utc_text(header.created_ms)}, outside the window")

    def _introduce(self) -> None:
        """The first opening appends the authority-signed warrant, unless the log already has it."""
        if self._introduced:
            return
        known = False
        if self.log.exists():
            try:
                known = any(entry.get("warrant_id") == self.warrant.warrant_id
                            and entry.get("kind") in ("warrant-issued", "warrant-presented")
                            for entry in read_entries(self.log.path))
            except (OSError, ValueError, AttributeError):
                raise SnapsealError(f"{self.log.path}: the opening log is unreadable or garbled; run "
                                    f"'snapseal log verify'; nothing opened") from None
        if not known:
            self.log.append("warrant-presented", self.warrant.log_key, self.who, warrant_ref=self.warrant.reference,
                            warrant_id=self.warrant.warrant_id, create=True,
                            detail={"warrant": self.warrant.public, "signature": self.warrant.signature})
        self._introduced = True

    def on_opened(self, record: Any) -> None:
        """Call after decrypting and verifying, BEFORE writing anything: checks the record again
        (``admit``), then appends a fsynced ``record-opened`` entry. Raises -> write nothing."""
        self.admit(record)
        header = record.header
        self._introduce()
        self.log.append("record-opened", self.warrant.log_key, self.who, warrant_ref=self.warrant.reference,
                        warrant_id=self.warrant.warrant_id, records=[header.record_id],
                        detail={"camera_id": record.camera_id, "key_id": header.recipient_key_id,
                                "device_key_id": getattr(header, "device_key_id", None)})
        self.opened.append(header.record_id)


def open_warrant(path: Path | str, log_path: Path | str | None = None, authority: Path | str | None = None,
                 who: str | None = None, at_ms: int | None = None) -> WarrantKeySource:
    """The key source for ``snapseal open --warrant``: the log defaults to ``opening.log`` beside
    the warrant; ``authority`` (an authority.pub) pins who must have signed it."""
    from snapseal.daemon.keyring import read_authority_key

    authority_key = read_authority_key(authority) if authority is not None else None
    warrant = load_warrant(path, authority_key, at_ms)
    log = OpeningLog(Path(log_path) if log_path is not None else Path(path).parent / "opening.log")
    return WarrantKeySource(warrant, log, who, clock=now_ms if at_ms is None else (lambda: int(at_ms)))


def add_open_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``snapseal open`` takes for opening with a warrant."""
    group = parser.add_argument_group("opening with a warrant (instead of --key)")
    group.add_argument("--warrant", type=Path, help="warrant file from 'snapseal warrant issue'")
    group.add_argument("--log", type=Path, dest="warrant_log",
                       help="opening log every opening is appended to (default: opening.log beside the warrant)")
    group.add_argument("--authority", type=Path, dest="warrant_authority",
                       help="authority.pub the warrant must be signed by")
    group.add_argument("--who", dest="warrant_who", help="who opens, for the log (default: user@host)")


def key_source_from_args(args: argparse.Namespace) -> WarrantKeySource | None:
    """None without --warrant; else the checked key source (one-line error if it is not good)."""
    if getattr(args, "warrant", None) is None:
        return None
    return open_warrant(args.warrant, getattr(args, "warrant_log", None), getattr(args, "warrant_authority", None),
                        getattr(args, "warrant_who", None))
