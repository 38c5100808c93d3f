"""The opening log: every warrant issued, every record opened, every period key destroyed,
appended to a hash-chained, signed log that anyone holding the authority's public key can check.

One JSON object per line (UTF-8, canonical: sorted keys, no spaces)::

    {"seq": 0, "prev": "<64 hex>", "time_ms": ..., "time": "2026-12-03T10:00:00Z",
     "kind": "log-created" | "keyring-issued" | "warrant-issued" | "warrant-presented"
             | "record-opened" | "keys-destroyed",
     "who": "<free text: the person or machine>", "warrant_ref": "<reference text or null>",
     "warrant_id": "<16 hex or null>", "records": ["<record id>", ...], "detail": {...},
     "signer_key": "<base64 Ed25519 public key>", "sig": "<base64, 64 bytes>"}

* ``prev`` is the SHA-256 (hex) of the previous line's canonical JSON (64 zeros for entry 0);
  an entry's hash is the SHA-256 of its own canonical JSON, ``sig`` included.
* ``sig`` is Ed25519 over ``b"snapseal/log/v1\\0"`` + the canonical JSON without ``sig``.
* Who may sign: the **authority** key (any kind); the **custodian** key named by an
  authority-signed ``log-created`` entry (``keys-destroyed``); a **warrant's log key**, named in
  the warrant the authority signed — introduced by a ``warrant-issued`` (authority-signed) or
  ``warrant-presented`` (carrying the authority-signed warrant) entry earlier in the same log —
  for ``record-opened`` of that warrant.

``verify_log`` checks all of this and names the first bad entry. The chain finds a removed,
reordered or edited entry anywhere before the last one; cutting entries off the *end* leaves
a valid shorter chain, which is why the head (``log_head``: one line) is published or handed
over: a later log must contain that head.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import nacl.exceptions
import nacl.signing

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.files import fsync_directory
from snapseal.daemon.keyring import b64, canonical_json, strict_json, unb64, utc_text
from snapseal.daemon.keys import key_id_of

LOG_DOMAIN = b"snapseal/log/v1\x00"
GENESIS_PREV = "0" * 64
KINDS = ("log-created", "keyring-issued", "warrant-issued", "warrant-presented", "record-opened", "keys-destroyed")
FIELDS = ("seq", "prev", "time_ms", "time", "kind", "who", "warrant_ref", "warrant_id", "records", "detail",
          "signer_key", "sig")
MAX_LINE_BYTES = 4 * 1024 * 1024


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical_json(entry)).hexdigest()


def _signed_bytes(entry: dict) -> bytes:
    return LOG_DOMAIN + canonical_json({k: v for k, v in entry.items() if k != "sig"})


@dataclass(frozen=True)
class LogCheck:
    entries: int  # entries that checked out
    head: str  # hash of the last good entry (GENESIS_PREV for an empty log)
    last_time_ms: int | None
    bad_entry: int | None  # 1-based line number of the first bad entry, None when all are good
    reason: str | None
    hashes: tuple[str, ...] = ()  # hash of every good entry, in order

    @property
    def ok(self) -> bool:
        return self.bad_entry is None


class OpeningLog:
    """Append-only access to one log file (an exclusive ``flock`` while appending)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def append(self, kind: str, signer: nacl.signing.SigningKey, who: str, *, warrant_ref: str | None = None,
               warrant_id: str | None = None, records: Iterable[str] = (), detail: dict | None = None,
               now_ms: int | None = None, create: bool = False) -> dict:
        """Append one signed entry; returns it. ``create`` allows starting a new log file."""
        if kind not in KINDS:
            raise ValueError(f"unknown log entry kind {kind!r}")
        if not create and not self.path.exists():
            raise SnapsealError(f"{self.path}: opening log not found (nothing was opened or written)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as error:
            raise SnapsealError(f"{self.path}: cannot open the opening log: {error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail(fd)
            now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
            entry: dict[str, Any] = {
                "seq": seq, "prev": prev, "time_ms": now_ms, "time": utc_text(now_ms), "kind": kind,
                "who": str(who), "warrant_ref": warrant_ref, "warrant_id": warrant_id,
                "records": [str(r) for r in records], "detail": detail or {},
                "signer_key": b64(signer.verify_key),
            }
            entry["sig"] = b64(signer.sign(_signed_bytes(entry)).signature)
            line = canonical_json(entry) + b"\n"
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as error:
            raise SnapsealError(f"{self.path}: cannot append to the opening log: {error.strerror or error}") from None
        finally:
            os.close(fd)
        if seq == 0:
            fsync_directory(self.path.parent)
        return entry

    def _tail(self, fd: int) -> tuple[int, str]:
        """(next seq, hash of the last entry) from the end of the file."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS_PREV
        chunk = min(size, 65536)
        data = os.pread(fd, chunk, size - chunk)
        while b"\n" not in data[:-1] and chunk < min(size, MAX_LINE_BYTES):  # the last line is longer
            chunk = min(size, MAX_LINE_BYTES, chunk * 4)
            data = os.pread(fd, chunk, size - chunk)
        if not data.endswith(b"\n"):
            raise SnapsealError(f"{self.path}: the last entry of the opening log is torn (no newline); "
                                f"run 'snapseal log verify' and repair by hand before anything else is appended")
        last = data[:-1].rsplit(b"\n", 1)[-1]
        try:
            entry = json.loads(last.decode("utf-8"))
            return int(entry["seq"]) + 1, entry_hash(entry)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise SnapsealError(f"{self.path}: the last entry of the opening log is garbled; "
                                f"run 'snapseal log verify'") from None


def _warrant_log_key(detail: dict, authority: nacl.signing.VerifyKey) -> tuple[str, bytes]:
    """(warrant id, its log public key) from an entry carrying an authority-signed warrant."""
    from snapseal.investigator.warrant import verify_warrant_public  # no import cycle at load time

    public = verify_warrant_public(detail.get("warrant"), detail.get("signature"), bytes(authority))
    return public["warrant_id"], unb64(public["log_key"], 32, "log_key")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_problem(entry: dict) -> str | None:
    if not (_is_int(entry["seq"]) and _is_int(entry["time_ms"]) and 0 <= entry["time_ms"] < 253_402_300_800_000):
        return "seq or time_ms is not a valid integer"
    if entry["time"] != utc_text(entry["time_ms"]):
        return "time does not match time_ms"
    for name in ("prev", "kind", "who", "signer_key", "sig"):
        if not isinstance(entry[name], str):
            return f"{name} is not text"
    for name in ("warrant_ref", "warrant_id"):
        if entry[name] is not None and not isinstance(entry[name], str):
            return f"{name} is not text or null"
    if not (isinstance(entry["records"], list) and all(isinstance(r, str) for r in entry["records"])):
        return "records is not a list of ids"
    if not isinstance(entry["detail"], dict):
        return "detail is not an object"
    return None


def verify_log(path: Path | str, authority_key: bytes) -> LogCheck:
    """Check chain, signatures and who signed what; stop at the first bad entry."""
    path = Path(path)
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        raise SnapsealError(f"{path}: opening log not found") from None
    except OSError as error:
        raise SnapsealError(f"{path}: cannot read the opening log: {error.strerror or error}") from None
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        torn = len(lines)
        lines_ok = lines[:-1]
        result = _verify_lines(lines_ok, authority_key)
        if result.ok:
            return LogCheck(result.entries, result.head, result.last_time_ms, torn, "torn last line (no newline)",
                            result.hashes)
        return result
    return _verify_lines(lines, authority_key)


def _verify_lines(lines: list[bytes], authority_key: bytes) -> LogCheck:
    authority = nacl.signing.VerifyKey(authority_key)
    custodians: set[bytes] = set()
    warrant_keys: dict[str, bytes] = {}
    prev, last_time = GENESIS_PREV, None
    count = 0
    hashes: list[str] = []

    def bad(number: int, reason: str) -> LogCheck:
        return LogCheck(count, prev, last_time, number, reason, tuple(hashes))

    for number, line in enumerate(lines, start=1):
        try:
            entry = strict_json(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return bad(number, "garbled (not JSON)")
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            return bad(number, "garbled (wrong fields)")
        if canonical_json(entry) != line:
            return bad(number, "edited (not in canonical form)")
        problem = _type_problem(entry)
        if problem:
            return bad(number, f"garbled ({problem})")
        if entry["seq"] != number - 1:
            return bad(number, f"sequence number {entry['seq']!r}, expected {number - 1}: "
                               f"an entry was removed, inserted or reordered")
        if entry["prev"] != prev:
            return bad(number, "previous-entry hash does not match: an entry before it was removed, "
                               "reordered or edited")
        if entry["kind"] not in KINDS:
            return bad(number, f"unknown kind {entry['kind']!r}")
        try:
            signer_raw = unb64(entry["signer_key"], 32, "signer_key")
            signature = unb64(entry["sig"], 64, "sig")
            nacl.signing.VerifyKey(signer_raw).verify(_signed_bytes(entry), signature)
        except (ValueError, TypeError, nacl.exceptions.CryptoError):
            return bad(number, "signature does not match: the entry was edited")
        kind, is_authority = entry["kind"], signer_raw == bytes(authority)
        detail = entry["detail"]
        try:
            if kind in ("log-created", "keyring-issued", "warrant-issued"):
                if not is_authority:
                    return bad(number, f"{kind} not signed by the authority (signer {key_id_of(signer_raw)})")
                if kind == "log-created" and detail.get("custodian_key") is not None:
                    custodians.add(unb64(detail["custodian_key"], 32, "custodian_key"))
                if kind == "warrant-issued":
                    warrant_id, log_key = _warrant_log_key(detail, authority)
                    if warrant_id != entry["warrant_id"]:
                        return bad(number, "warrant id does not match the signed warrant")
                    warrant_keys[warrant_id] = log_key
            elif kind == "warrant-presented":
                warrant_id, log_key = _warrant_log_key(detail, authority)
                if warrant_id != entry["warrant_id"] or signer_raw != log_key:
                    return bad(number, "warrant-presented not signed by that warrant's log key")
                warrant_keys[warrant_id] = log_key
            elif kind == "record-opened":
                expected = warrant_keys.get(entry["warrant_id"])
                if expected is None:
                    return bad(number, f"record opened under warrant {entry['warrant_id']} that no earlier "
                                       f"entry introduces")
                if signer_raw != expected:
                    return bad(number, "record-opened not signed by its warrant's log key")
            elif kind == "keys-destroyed":
                if not (is_authority or signer_raw in custodians):
                    return bad(number, "keys-destroyed not signed by the authority or its custodian")
        except (SnapsealError, ValueError, TypeError, KeyError) as error:
            return bad(number, f"bad content: {error}")
        prev, last_time = entry_hash(entry), entry["time_ms"]
        hashes.append(prev)
        count += 1
    return LogCheck(count, prev, last_time, None, None, tuple(hashes))


def log_head(path: Path | str) -> str:
    """One line to publish: entry count, hash of the last entry, its time (no check made)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapsealError(f"{path}: opening log not found") from None
    except OSError as error:
        raise SnapsealError(f"{path}: cannot read the opening log: {error.strerror or error}") from None
    lines = [line for line in data.split(b"\n") if line]
    if not lines:
        return f"snapseal-log v1 entries 0 head {GENESIS_PREV}"
    try:
        last = json.loads(lines[-1].decode("utf-8"))
        return f"snapseal-log v1 entries {len(lines)} head {entry_hash(last)} at {last['time']}"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise SnapsealError(f"{path}: the last entry is garbled; run 'snapseal log verify'") from None


def read_entries(path: Path | str) -> list[dict]:
    """All entries, parsed (unchecked); for tools and tests."""
    return [json.loads(line) for line in Path(path).read_bytes().split(b"\n") if line]
