"""The camera's keyring: one investigator public key per period, signed by the authority.

A camera seals each record to the key of the period the record is made in (a day by default),
so that a warrant, which holds only the private keys of the periods it covers, opens one
camera and one time window and nothing else (docs/SECURITY.md). The keyring holds public keys
only: nothing on the camera can open a record.

File (JSON, written by ``snapseal keyring issue``)::

    {"snapseal_keyring": 1,
     "camera_id": "cam-01",
     "keyring_id": "<16 hex>",            random, names this issue of the keyring
     "issued_ms": 1796000000000,
     "authority_key": "<base64, 32 bytes>", the authority's Ed25519 public key
     "periods": [[start_ms, "<base64 X25519 public key>"], ...],  sorted, contiguous
     "end_ms": 1830000000000,              end of the last period (exclusive)
     "signature": "<base64, 64 bytes>"}

Period ``i`` runs from ``periods[i][0]`` (inclusive) to ``periods[i+1][0]`` (exclusive; the
last one to ``end_ms``); times are milliseconds since the Unix epoch (UTC). The boundaries are
explicit, so a period can be a local calendar day (23 or 25 hours on a daylight-saving day).
The signature is Ed25519 by the authority over ``b"snapseal/keyring/v1\\0"`` followed by the
canonical JSON (``canonical_json``) of the document without its ``signature`` member.

At start the camera checks the signature, that the signing key is the authority key it was
given (``[keys] keyring_authority``), and that the keyring is for its own camera id; any
failure is one line and the camera does not start.

When it runs out: see ``RUNS_OUT``. Pure Python + PyNaCl (runs on the board, no numpy).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.signing

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keys import InvestigatorPublicKey, key_id_of

KEYRING_VERSION = 1
KEYRING_DOMAIN = b"snapseal/keyring/v1\x00"
MAX_KEYRING_BYTES = 8 * 1024 * 1024  # ~60 bytes a period: far above years of hourly periods
DEFAULT_LOW_WARNING_DAYS = 30.0
WARN_EVERY_S = 6 * 3600.0  # a low keyring is logged at most this often
HEALTH_CHECK_EVERY_S = 60.0  # recipient_for looks at the keyring's health at most this often
DAY_S = 86400.0
MAX_TIME_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z

# What the camera does when no period key covers a record's time (said once, here, in the log
# and in STATUS).
RUNS_OUT = ("keyring exhausted: the camera seals nothing it has no period key for (each such record is "
            "dropped and counted as an error in the log and STATUS); it never seals to another key")

log = logging.getLogger("snapseal.keyring")


def canonical_json(document: Any) -> bytes:
    """The bytes that get signed: sorted keys, no spaces, ASCII only (one encoding per value)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def strict_json(blob: bytes | str) -> Any:
    """json.loads without NaN/Infinity (which a standard parser rejects and canonical_json refuses)."""
    return json.loads(blob, parse_constant=_no_constants)


def b64(raw: bytes) -> str:
    return base64.b64encode(bytes(raw)).decode("ascii")


def unb64(text: Any, size: int, what: str) -> bytes:
    """Decode base64 of exactly ``size`` bytes, or raise ValueError naming ``what``."""
    if not isinstance(text, str):
        raise ValueError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None
    if len(raw) != size:
        raise ValueError(f"{what} has {len(raw)} bytes, expected {size}")
    return raw


def utc_text(ms: int | float) -> str:
    """Milliseconds since the epoch -> '2026-12-03T00:00:00Z' (seconds precision)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ms) // 1000))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class KeyringError(SnapsealError):
    """A keyring the camera must not use (unreadable, tampered, for another camera)."""


class KeyringExhaustedError(SnapsealError):
    """No period key covers the time a record is made in: nothing is sealed."""


@dataclass(frozen=True)
class Period:
    camera_id: str
    start_ms: int  # inclusive
    end_ms: int  # exclusive
    public: InvestigatorPublicKey

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def contains_ms(self, ms: int) -> bool:
        return self.start_ms <= ms < self.end_ms


@dataclass(frozen=True)
class KeyringHealth:
    level: str  # "ok" | "low" | "out" | "early" (clock before the first period)
    seconds_left: float
    message: str  # one line, for the log and systemd STATUS


def keyring_signed_bytes(document: dict) -> bytes:
    return KEYRING_DOMAIN + canonical_json({k: v for k, v in document.items() if k != "signature"})


@dataclass
class Keyring:
    """A checked keyring. ``recipient_for(created_s)`` is the sealer's recipient source."""

    camera_id: str
    keyring_id: str
    issued_ms: int
    authority_key: bytes  # Ed25519 public key that signed it
    periods: tuple[Period, ...]
    source: str = "keyring"
    low_warning_s: float = DEFAULT_LOW_WARNING_DAYS * DAY_S
    _starts: list[int] = field(default_factory=list, repr=False)
    _last_warning: float = field(default=float("-inf"), repr=False)
    _last_check: float = field(default=float("-inf"), repr=False)

    def __post_init__(self) -> None:
        self._starts = [period.start_ms for period in self.periods]

    # -------------------------------------------------------------- lookups

    @property
    def start_ms(self) -> int:
        return self.periods[0].start_ms

    @property
    def end_ms(self) -> int:
        return self.periods[-1].end_ms

    @property
    def authority_key_id(self) -> str:
        return key_id_of(self.authority_key)

    def period_at_ms(self, ms: int) -> Period | None:
        index = bisect.bisect_right(self._starts, int(ms)) - 1
        if index < 0 or not self.periods[index].contains_ms(int(ms)):
            return None
        return self.periods[index]

    def period_for(self, created_s: float) -> Period:
        ms = int(round(float(created_s) * 1000.0))
        period = self.period_at_ms(ms)
        if period is None:
            where = "before its first period" if ms < self.start_ms else "after its last period"
            raise KeyringExhaustedError(
                f"{self.source}: no period key for {utc_text(ms)} ({where}, "
                f"{utc_text(self.start_ms)} to {utc_text(self.end_ms)}); {RUNS_OUT}")
        return period

    def recipient_for(self, created_s: float) -> InvestigatorPublicKey:
        """The public key of the period ``created_s`` (seconds since the epoch) falls in."""
        period = self.period_for(created_s)
        if not abs(created_s - self._last_check) < HEALTH_CHECK_EVERY_S:  # not on every record
            self._last_check = created_s
            self.warn_if_low(created_s)
        return period.public

    # -------------------------------------------------------------- running low

    def health(self, now_s: float) -> KeyringHealth:
        now_ms = int(round(now_s * 1000.0))
        left = (self.end_ms - now_ms) / 1000.0
        ends = utc_text(self.end_ms)
        if now_ms < self.start_ms:
            return KeyringHealth("early", left, f"keyring {self.keyring_id}: clock {utc_text(now_ms)} is before its "
                                                f"first period ({utc_text(self.start_ms)}); nothing is sealed until then")
        if left <= 0:
            return KeyringHealth("out", left, f"keyring {self.keyring_id} ran out on {ends}: {RUNS_OUT}")
        days = left / DAY_S
        if left <= self.low_warning_s:
            return KeyringHealth("low", left, f"keyring {self.keyring_id} runs low: {days:.1f} days left "
                                              f"(ends {ends}); provision a new one with 'snapseal keyring issue'")
        return KeyringHealth("ok", left, f"keyring {days:.0f} days left")

    def status(self, now_s: float | None = None) -> str:
        """A short string for systemd STATUS."""
        return self.health(time.time() if now_s is None else now_s).message

    def warn_if_low(self, now_s: float | None = None) -> KeyringHealth:
        """Log a warning when low/out/early, at most every WARN_EVERY_S; returns the health."""
        now_s = time.time() if now_s is None else float(now_s)
        health = self.health(now_s)
        if health.level != "ok" and now_s - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now_s
            (log.error if health.level == "out" else log.warning)("%s", health.message)
        return health

    def describe(self) -> str:
        return (f"keyring {self.keyring_id} for camera {self.camera_id}: {len(self.periods)} periods "
                f"{utc_text(self.start_ms)} to {utc_text(self.end_ms)}, authority {self.authority_key_id}")


# ---------------------------------------------------------------- loading


def read_authority_document(path: Path | str) -> dict:
    """The JSON object of an ``authority.pub`` file (version 1), read the same way on the camera
    and on the trustees' machine; any problem is one ``KeyringError`` line."""
    path = Path(path)
    try:
        blob = path.read_bytes()[:65536]
        document = strict_json(blob.decode("utf-8"))
    except FileNotFoundError:
        raise KeyringError(f"{path}: authority key file not found (made by 'snapseal authority init')") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KeyringError(f"{path}: not an authority key file ({getattr(error, 'strerror', None) or 'garbled'})") from None
    if not isinstance(document, dict) or document.get("snapseal_authority") != 1:
        raise KeyringError(f"{path}: not a snapseal authority key file (version 1)")
    return document


def read_authority_key(path: Path | str) -> bytes:
    """The Ed25519 public key in an ``authority.pub`` file (written by ``snapseal authority init``)."""
    path = Path(path)
    document = read_authority_document(path)
    try:
        key = unb64(document.get("sign_key"), 32, "sign_key")
    except ValueError as error:
        raise KeyringError(f"{path}: garbled authority key file: {error}") from None
    if document.get("authority_id") != key_id_of(key):
        raise KeyringError(f"{path}: garbled authority key file (authority_id does not match its key)")
    return key


def parse_keyring(blob: bytes, source: str = "keyring") -> Keyring:
    """Check the structure and the signature (against the key inside); no camera check."""
    if len(blob) > MAX_KEYRING_BYTES:
        raise KeyringError(f"{source}: not a keyring (larger than {MAX_KEYRING_BYTES} bytes)")
    try:
        document = strict_json(bytes(blob).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyringError(f"{source}: not a keyring (garbled JSON)") from None
    if not isinstance(document, dict) or "snapseal_keyring" not in document:
        raise KeyringError(f"{source}: not a snapseal keyring")
    if document.get("snapseal_keyring") != KEYRING_VERSION:
        raise KeyringError(f"{source}: keyring version {document.get('snapseal_keyring')!r} is not supported "
                           f"(this snapseal reads {KEYRING_VERSION})")
    try:
        authority_key = unb64(document.get("authority_key"), 32, "authority_key")
        signature = unb64(document.get("signature"), 64, "signature")
    except ValueError as error:
        raise KeyringError(f"{source}: garbled keyring: {error}") from None
    try:
        nacl.signing.VerifyKey(authority_key).verify(keyring_signed_bytes(document), signature)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise KeyringError(f"{source}: keyring signature does not match (tampered or garbled); refusing it") from None
    camera_id, keyring_id = document.get("camera_id"), document.get("keyring_id")
    issued_ms, end_ms, rows = document.get("issued_ms"), document.get("end_ms"), document.get("periods")
    if not (isinstance(camera_id, str) and camera_id and isinstance(keyring_id, str) and _is_int(issued_ms)
            and _is_int(end_ms) and isinstance(rows, list) and rows):
        raise KeyringError(f"{source}: keyring is incomplete (camera_id, keyring_id, issued_ms, periods, end_ms)")
    starts: list[int] = []
    publics: list[InvestigatorPublicKey] = []
    for index, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 2 and _is_int(row[0])):
            raise KeyringError(f"{source}: period {index} is not [start_ms, key]")
        try:
            publics.append(InvestigatorPublicKey(nacl.public.PublicKey(unb64(row[1], 32, f"period {index} key"))))
        except ValueError as error:
            raise KeyringError(f"{source}: garbled keyring: {error}") from None
        if starts and row[0] <= starts[-1]:
            raise KeyringError(f"{source}: periods are not in order at period {index}")
        starts.append(row[0])
    if end_ms <= starts[-1]:
        raise KeyringError(f"{source}: end_ms is not after the last period's start")
    if starts[0] < 0 or end_ms > MAX_TIME_MS:
        raise KeyringError(f"{source}: period times outside 1970 to 9999")
    if len({public.key_id for public in publics}) != len(publics):
        raise KeyringError(f"{source}: a period key appears twice")
    ends = starts[1:] + [end_ms]
    periods = tuple(Period(camera_id, start, end, public) for start, end, public in zip(starts, ends, publics))
    return Keyring(camera_id=camera_id, keyring_id=keyring_id, issued_ms=issued_ms, authority_key=authority_key,
                   periods=periods, source=source)


def load_keyring(path: Path | str, camera_id: str, authority: bytes | Path | str | None,
                 now_s: float | None = None, low_warning_days: float = DEFAULT_LOW_WARNING_DAYS) -> Keyring:
    """The camera's check at start: signature, authority, camera id, not run out.

    ``authority`` is the authority's Ed25519 public key (bytes) or its ``authority.pub`` file;
    ``None`` accepts the key inside the keyring (integrity only, not who made it)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            blob = handle.read(MAX_KEYRING_BYTES + 1)
    except FileNotFoundError:
        raise KeyringError(f"{path}: keyring not found") from None
    except OSError as error:
        raise KeyringError(f"{path}: cannot read keyring: {error.strerror or error}") from None
    keyring = parse_keyring(blob, str(path))
    if authority is not None:
        expected = authority if isinstance(authority, bytes) else read_authority_key(authority)
        if keyring.authority_key != expected:
            raise KeyringError(f"{path}: keyring signed by authority {keyring.authority_key_id}, "
                               f"this camera trusts authority {key_id_of(expected)}; refusing it")
    if keyring.camera_id != camera_id:
        raise KeyringError(f"{path}: keyring is for camera {keyring.camera_id!r}, this camera is {camera_id!r}")
    keyring.low_warning_s = float(low_warning_days) * DAY_S
    health = keyring.health(time.time() if now_s is None else float(now_s))
    if health.level == "out":
        raise KeyringError(f"{path}: {health.message}")
    if health.level != "ok":
        keyring.warn_if_low(time.time() if now_s is None else float(now_s))
    return keyring
