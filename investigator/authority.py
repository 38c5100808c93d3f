"""The authority: a secret held k-of-n by trustees, and a vault of per-(camera, period) keys.

Layout of an authority directory (``snapseal authority init --dir AUTH``)::

    AUTH/authority.pub      public: the authority's Ed25519 key (signs keyrings, warrants, log
                            entries) and its vault X25519 public key; give a copy to every camera
    AUTH/custodian.key      0600: Ed25519 key of the machine that keeps the vault; signs only
                            "keys-destroyed" log entries (it cannot open anything)
    AUTH/vault/<camera>.json  0600: one entry per period of that camera: start, end, public
                            key, and the period's **random** X25519 private key sealed (libsodium
                            sealed box) to the vault public key; ``null`` once destroyed
    AUTH/opening.log        the hash-chained opening log (investigator/opening_log.py)

The trustees' secret is 32 random bytes, split with SLIP-39 (``shamir-mnemonic``, one group,
k of n members). It never touches a disk: ``snapseal keyring issue`` and ``snapseal warrant
issue`` rebuild it in memory from k shares, and from it come, by HMAC-SHA256 with fixed labels,

* the authority signing key: ``seed = HMAC(secret, b"snapseal/authority/v1/signing")``;
* the vault key pair:        ``private = HMAC(secret, b"snapseal/authority/v1/vault")``.

Period keys are *not* derived from the secret: each is random, and exists only sealed in the
vault (and in the warrants issued for it). At expiry (``expire_keys``: the period's end plus
the records' retention) its sealed copy is deleted, so that even all trustees together cannot
open that period's records any more. The trade-off against deriving period keys is written in
docs/SECURITY.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from datetime import time as dtime
from pathlib import Path
from typing import Iterable, Sequence

import nacl.exceptions
import nacl.public
import nacl.signing
import shamir_mnemonic

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.files import check_private_file, write_file_atomically
from snapseal.daemon.keyring import (
    KEYRING_VERSION,
    b64,
    canonical_json,
    keyring_signed_bytes,
    unb64,
    utc_text,
)
from snapseal.daemon.keys import key_id_of
from snapseal.investigator import custody
from snapseal.investigator.opening_log import OpeningLog

AUTHORITY_PUB_NAME = "authority.pub"
CUSTODIAN_KEY_NAME = "custodian.key"
LOG_NAME = "opening.log"
VAULT_DIR = "vault"
SECRET_BYTES = 32
DAY_S = 86400
MAX_DAYS = 3660
MAX_SHARES = custody.MAX_SHARES
CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LABEL_SIGNING = b"snapseal/authority/v1/signing"
LABEL_VAULT = b"snapseal/authority/v1/vault"


def check_camera_id(camera_id: str) -> str:
    if not isinstance(camera_id, str) or not CAMERA_ID.match(camera_id):
        raise SnapsealError(f"camera id {camera_id!r}: use 1-64 letters, digits, '.', '_' or '-' "
                            f"(starting with a letter or digit)")
    return camera_id


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- the secret and what comes from it


class AuthoritySecret:
    """The trustees' secret, in memory only (a bytearray, zeroed by ``wipe``/``with``)."""

    def __init__(self, secret: bytes | bytearray):
        if len(secret) != SECRET_BYTES:
            raise SnapsealError(f"shares: they hold a {len(secret)}-byte secret, not an authority secret")
        self._secret = bytearray(secret)

    def _derive(self, label: bytes) -> bytes:
        if not any(self._secret):
            raise SnapsealError("authority secret was wiped")
        return hmac.new(bytes(self._secret), label, hashlib.sha256).digest()

    @property
    def signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self._derive(LABEL_SIGNING))

    @property
    def vault_private(self) -> nacl.public.PrivateKey:
        return nacl.public.PrivateKey(self._derive(LABEL_VAULT))

    @property
    def authority_id(self) -> str:
        return key_id_of(bytes(self.signing_key.verify_key))

    def split(self, threshold: int, count: int) -> list[str]:
        check_threshold(threshold, count)
        (group,) = shamir_mnemonic.generate_mnemonics(group_threshold=1, groups=[(threshold, count)],
                                                      master_secret=bytes(self._secret))
        return list(group)

    def wipe(self) -> None:
        for index in range(len(self._secret)):
            self._secret[index] = 0

    def __enter__(self) -> AuthoritySecret:
        return self

    def __exit__(self, *exc: object) -> None:
        self.wipe()


def check_threshold(threshold: int, count: int) -> None:
    if not 2 <= threshold <= count <= MAX_SHARES:
        raise SnapsealError(f"trustees: need 2 <= k <= n <= {MAX_SHARES}, got k={threshold}, n={count} "
                            f"(k=1 would be n plain copies of the secret)")


def combine_mnemonics(mnemonics: Sequence[str]) -> AuthoritySecret:
    """k shares -> the secret; more than k are fine (the first k distinct ones are used)."""
    words = list(dict.fromkeys(" ".join(m.split()) for m in mnemonics))
    try:
        threshold = shamir_mnemonic.share.Share.from_mnemonic(words[0]).member_threshold if words else 0
        if len(words) > threshold > 0:
            words = words[:threshold]
        secret = shamir_mnemonic.combine_mnemonics(words)
    except shamir_mnemonic.MnemonicError as error:
        raise SnapsealError(f"shares: cannot rebuild the authority secret: {error}") from None
    return AuthoritySecret(secret)


# ---------------------------------------------------------------- the public part


@dataclass(frozen=True)
class AuthorityPublic:
    sign_key: bytes  # Ed25519 public
    vault_key: bytes  # X25519 public
    threshold: int
    count: int
    created: str

    @property
    def authority_id(self) -> str:
        return key_id_of(self.sign_key)

    def to_bytes(self) -> bytes:
        document = {"snapseal_authority": 1, "authority_id": self.authority_id, "sign_key": b64(self.sign_key),
                    "vault_key": b64(self.vault_key), "threshold": self.threshold, "shares": self.count,
                    "created": self.created}
        return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("ascii")

    @classmethod
    def load(cls, path: Path | str) -> AuthorityPublic:
        from snapseal.daemon.keyring import read_authority_document

        path = Path(path)
        document = read_authority_document(path)
        try:
            public = cls(unb64(document.get("sign_key"), 32, "sign_key"), unb64(document.get("vault_key"), 32, "vault_key"),
                         int(document["threshold"]), int(document["shares"]), str(document.get("created", "")))
        except (ValueError, KeyError, TypeError) as error:
            raise SnapsealError(f"{path}: garbled authority file: {error}") from None
        if document.get("authority_id") != public.authority_id:
            raise SnapsealError(f"{path}: garbled authority file (authority_id does not match its key)")
        return public


# ---------------------------------------------------------------- the vault


VAULT_ENTRY_DOMAIN = b"snapseal/vault-entry/v1\x00"


def vault_entry_bytes(camera_id: str, entry: VaultEntry) -> bytes:
    return VAULT_ENTRY_DOMAIN + canonical_json({"camera_id": camera_id, "start_ms": entry.start_ms,
                                                "end_ms": entry.end_ms, "public": b64(entry.public)})


@dataclass
class VaultEntry:
    start_ms: int
    end_ms: int
    public: bytes
    sealed: bytes | None  # sealed box of the 32-byte private key to the vault key; None = destroyed
    destroy_after_ms: int
    destroyed_ms: int | None = None
    signature: bytes = b""  # authority Ed25519 over vault_entry_bytes(camera, start, end, public)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    def to_json(self) -> dict:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "key_id": self.key_id, "public": b64(self.public),
                "sealed": b64(self.sealed) if self.sealed is not None else None,
                "destroy_after_ms": self.destroy_after_ms, "destroyed_ms": self.destroyed_ms,
                "signature": b64(self.signature)}

    @classmethod
    def from_json(cls, row: dict) -> VaultEntry:
        sealed = row.get("sealed")
        entry = cls(int(row["start_ms"]), int(row["end_ms"]), unb64(row["public"], 32, "public"),
                    unb64(sealed, 32 + 48, "sealed") if sealed is not None else None,
                    int(row["destroy_after_ms"]), row.get("destroyed_ms"), unb64(row["signature"], 64, "signature"))
        if row.get("key_id") != entry.key_id:
            raise ValueError("key_id does not match its public key")
        return entry


class Authority:
    """An authority directory: its public file, vault, custodian key and log."""

    def __init__(self, directory: Path | str):
        self.dir = Path(directory)
        self.public = AuthorityPublic.load(self.dir / AUTHORITY_PUB_NAME)
        self.log = OpeningLog(self.dir / LOG_NAME)

    @property
    def vault_dir(self) -> Path:
        return self.dir / VAULT_DIR

    def vault_path(self, camera_id: str) -> Path:
        return self.vault_dir / f"{check_camera_id(camera_id)}.json"

    def cameras(self) -> list[str]:
        return sorted(path.stem for path in self.vault_dir.glob("*.json"))

    def unlock(self, mnemonics: Sequence[str], stated_ids: Iterable[str | None] = ()) -> AuthoritySecret:
        """Rebuild the secret from k shares and check it is this authority's."""
        for stated in stated_ids:
            if stated and stated != self.public.authority_id:
                raise SnapsealError(f"a share belongs to authority {stated}, this authority is "
                                    f"{self.public.authority_id}; nothing done")
        secret = combine_mnemonics(mnemonics)
        if secret.authority_id != self.public.authority_id:
            rebuilt = secret.authority_id
            secret.wipe()
            raise SnapsealError(f"shares rebuild authority {rebuilt}, not this authority "
                                f"{self.public.authority_id} (shares from another secret?); nothing done")
        return secret

    def unlock_files(self, paths: Sequence[Path | str]) -> AuthoritySecret:
        shares = [custody.read_share_file(path) for path in paths]
        return self.unlock([mnemonic for mnemonic, _ in shares], [stated for _, stated in shares])

    def custodian_key(self) -> nacl.signing.SigningKey:
        path = self.dir / CUSTODIAN_KEY_NAME
        check_private_file(path, "custodian key")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return nacl.signing.SigningKey(unb64(document["seed"], 32, "seed"))
        except FileNotFoundError:
            raise SnapsealError(f"{path}: custodian key not found") from None
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise SnapsealError(f"{path}: garbled custodian key") from None

    def read_vault(self, camera_id: str) -> list[VaultEntry]:
        path = self.vault_path(camera_id)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise SnapsealError(f"{path}: cannot read the vault: {getattr(error, 'strerror', None) or 'garbled'}") from None
        try:
            if document.get("snapseal_vault") != 1 or document.get("camera_id") != camera_id:
                raise ValueError("not this camera's vault file (version 1)")
            return [VaultEntry.from_json(row) for row in document["periods"]]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SnapsealError(f"{path}: garbled vault: {error}") from None

    def write_vault(self, camera_id: str, entries: list[VaultEntry]) -> Path:
        path = self.vault_path(camera_id)
        document = {"snapseal_vault": 1, "camera_id": camera_id, "authority_id": self.public.authority_id,
                    "periods": [entry.to_json() for entry in sorted(entries, key=lambda e: e.start_ms)]}
        try:
            self.vault_dir.mkdir(mode=0o700, exist_ok=True)
            return write_file_atomically(path, (json.dumps(document, indent=0) + "\n").encode("ascii"),
                                         mode=0o600, overwrite=True)
        except OSError as error:
            raise SnapsealError(f"{path}: cannot write the vault: {error.strerror or error}") from None

    def check_entry(self, camera_id: str, entry: VaultEntry) -> None:
        """The period's public key is the one the authority made: the vault's public key is public,
        so anyone who can write the vault could otherwise slip in a key pair of their own."""
        try:
            nacl.signing.VerifyKey(self.public.sign_key).verify(vault_entry_bytes(camera_id, entry), entry.signature)
        except (nacl.exceptions.CryptoError, ValueError):
            raise SnapsealError(f"{self.vault_path(camera_id)}: the entry for the period starting "
                                f"{utc_text(entry.start_ms)} is not signed by this authority (vault edited?); "
                                f"nothing done") from None

    def unseal(self, secret: AuthoritySecret, entry: VaultEntry, camera_id: str) -> nacl.public.PrivateKey:
        self.check_entry(camera_id, entry)
        if entry.sealed is None:
            raise SnapsealError(f"period key {entry.key_id} was destroyed at expiry")
        try:
            private = nacl.public.PrivateKey(nacl.public.SealedBox(secret.vault_private).decrypt(entry.sealed))
        except (nacl.exceptions.CryptoError, ValueError):
            raise SnapsealError(f"vault entry {entry.key_id} does not open with this authority's vault key") from None
        if bytes(private.public_key) != entry.public:
            raise SnapsealError(f"vault entry {entry.key_id} holds the wrong private key (vault edited?)")
        return private


def load_authority(directory: Path | str) -> Authority:
    return Authority(directory)


# ---------------------------------------------------------------- init


def init_authority(directory: Path | str, threshold: int, count: int, shares_out: Path | str,
                   who: str = "authority init") -> tuple[AuthorityPublic, list[Path]]:
    """Make a new authority: secret, shares, public file, custodian key, vault, log."""
    directory, shares_out = Path(directory), Path(shares_out)
    check_threshold(threshold, count)
    targets = [directory / AUTHORITY_PUB_NAME, directory / CUSTODIAN_KEY_NAME, directory / LOG_NAME]
    targets += [shares_out / custody.share_file_name(i + 1, count) for i in range(count)]
    existing = [str(target) for target in targets if target.exists()]
    if existing:
        raise SnapsealError(f"{existing[0]}: exists; an authority is made once and never overwritten")
    with AuthoritySecret(secrets.token_bytes(SECRET_BYTES)) as secret:
        mnemonics = secret.split(threshold, count)
        signing = secret.signing_key
        public = AuthorityPublic(bytes(signing.verify_key), bytes(secret.vault_private.public_key), threshold, count,
                                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        custodian = nacl.signing.SigningKey.generate()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            (directory / VAULT_DIR).mkdir(mode=0o700, exist_ok=True)
            shares_out.mkdir(mode=0o700, parents=True, exist_ok=True)
            paths = []
            for index, (target, mnemonic) in enumerate(zip(targets[3:], mnemonics), start=1):
                text = (f"# snapseal authority share {index} of {count}; any {threshold} shares issue keyrings "
                        f"and warrants\n{custody.KEY_ID_PREFIX} {public.authority_id}\n{mnemonic}\n")
                paths.append(write_file_atomically(target, text.encode("utf-8"), mode=0o600))
            write_file_atomically(directory / CUSTODIAN_KEY_NAME, (json.dumps(
                {"snapseal_custodian": 1, "seed": b64(bytes(custodian))}) + "\n").encode("ascii"), mode=0o600)
            write_file_atomically(directory / AUTHORITY_PUB_NAME, public.to_bytes(), mode=0o644)
        except OSError as error:
            raise SnapsealError(f"{directory}: cannot write the authority: {error.strerror or error}") from None
        OpeningLog(directory / LOG_NAME).append(
            "log-created", signing, who, create=True,
            detail={"authority_id": public.authority_id, "vault_key": b64(public.vault_key),
                    "custodian_key": b64(bytes(custodian.verify_key)), "threshold": threshold, "shares": count})
    return public, paths


# ---------------------------------------------------------------- periods and keyrings


def resolve_tz(name: str | None) -> tzinfo:
    if name in (None, "", "UTC", "Z"):
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    except ImportError:  # pragma: no cover - Python < 3.9
        raise SnapsealError("time zones need Python 3.9+ (zoneinfo)") from None
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise SnapsealError(f"unknown time zone {name!r} (use an IANA name such as Europe/Brussels)") from None


def local_midnight_ms(day: date, tz: tzinfo) -> int:
    return int(round(datetime.combine(day, dtime(0), tzinfo=tz).timestamp() * 1000))


def check_period(period_s: int) -> int:
    period_s = int(period_s)
    if period_s < 60 or (DAY_S % period_s and period_s % DAY_S):
        raise SnapsealError(f"period of {period_s} s: must be at least 60 s and divide a day, or be whole days")
    return period_s


def period_boundaries(start_day: date, days: int, period_s: int, tz: tzinfo) -> list[int]:
    """Start of every period (ms) and the end of the last one: local days from ``start_day``.

    Periods of whole days start at local midnight; shorter periods start at local midnight and
    every ``period_s`` after it within the day (the day's last one is cut at the next midnight,
    so a 23- or 25-hour day keeps the boundaries on midnight)."""
    if not 1 <= days <= MAX_DAYS:
        raise SnapsealError(f"--days {days}: must be 1 to {MAX_DAYS}")
    period_s = check_period(period_s)
    midnights = [local_midnight_ms(start_day + timedelta(days=j), tz) for j in range(days + 1)]
    if period_s >= DAY_S:
        step = period_s // DAY_S
        bounds = midnights[::step]
        if bounds[-1] != midnights[-1]:
            bounds.append(midnights[-1])
    else:
        bounds = []
        for begin, end in zip(midnights, midnights[1:]):
            bounds.extend(range(begin, end, period_s * 1000))
        bounds.append(midnights[-1])
    if sorted(set(bounds)) != bounds:
        raise SnapsealError("period boundaries are not increasing in this time zone; use UTC periods")
    return bounds


def today_in(tz: tzinfo, at_ms: int | None = None) -> date:
    at_ms = now_ms() if at_ms is None else at_ms
    return datetime.fromtimestamp(at_ms / 1000, tz).date()


@dataclass(frozen=True)
class IssuedKeyring:
    blob: bytes
    camera_id: str
    keyring_id: str
    periods: int
    new_keys: int
    start_ms: int
    end_ms: int


def issue_keyring(authority: Authority, secret: AuthoritySecret, camera_id: str, days: int = 400,
                  start_day: date | None = None, period_s: int = DAY_S, tz_name: str | None = None,
                  retention_days: float = 10.0, who: str = "keyring issue", at_ms: int | None = None) -> IssuedKeyring:
    """Keys for ``days`` days of periods of ``camera_id`` (new random ones where the vault has
    none; the same ones where it has), the signed keyring, and a log entry. A keyring issued
    again for overlapping periods holds the same keys, so re-issuing is how a keyring is
    extended."""
    check_camera_id(camera_id)
    if not 0 < float(retention_days) <= MAX_DAYS:
        raise SnapsealError(f"--retention-days {retention_days}: must be in (0, {MAX_DAYS}]")
    tz = resolve_tz(tz_name)
    at_ms = now_ms() if at_ms is None else int(at_ms)
    start_day = today_in(tz, at_ms) if start_day is None else start_day
    bounds = period_boundaries(start_day, int(days), period_s, tz)
    retention_ms = int(float(retention_days) * DAY_S * 1000)
    entries = authority.read_vault(camera_id)
    by_start = {entry.start_ms: entry for entry in entries}
    vault_key = nacl.public.PublicKey(authority.public.vault_key)
    rows, new = [], 0
    signing = secret.signing_key
    for start, end in zip(bounds, bounds[1:]):
        entry = by_start.get(start)
        if entry is None:
            clash = next((e for e in entries if e.start_ms < end and start < e.end_ms), None)
            if clash is not None:
                raise SnapsealError(f"camera {camera_id} already has a period {utc_text(clash.start_ms)} to "
                                    f"{utc_text(clash.end_ms)} that overlaps {utc_text(start)} to {utc_text(end)} "
                                    f"differently; issue with the same period length and time zone as before")
            private = nacl.public.PrivateKey.generate()
            entry = VaultEntry(start, end, bytes(private.public_key), nacl.public.SealedBox(vault_key).encrypt(bytes(private)),
                               end + retention_ms)
            entry.signature = signing.sign(vault_entry_bytes(camera_id, entry)).signature
            del private
            entries.append(entry)
            by_start[start] = entry
            new += 1
        elif entry.end_ms != end:
            raise SnapsealError(f"camera {camera_id}: the period starting {utc_text(start)} ends at "
                                f"{utc_text(entry.end_ms)} in the vault, not {utc_text(end)}; use the same period "
                                f"length and time zone as before")
        elif entry.sealed is None:
            raise SnapsealError(f"camera {camera_id}: the key of the period starting {utc_text(start)} was destroyed "
                                f"at expiry; a keyring cannot cover that period again")
        else:
            authority.check_entry(camera_id, entry)
            entry.destroy_after_ms = max(entry.destroy_after_ms, end + retention_ms)
        rows.append([start, b64(entry.public)])
    document = {"snapseal_keyring": KEYRING_VERSION, "camera_id": camera_id, "keyring_id": secrets.token_hex(8),
                "issued_ms": at_ms, "authority_key": b64(bytes(signing.verify_key)), "periods": rows,
                "end_ms": bounds[-1]}
    document["signature"] = b64(signing.sign(keyring_signed_bytes(document)).signature)
    authority.write_vault(camera_id, entries)
    authority.log.append("keyring-issued", signing, who, detail={
        "camera_id": camera_id, "keyring_id": document["keyring_id"], "start_ms": bounds[0], "end_ms": bounds[-1],
        "periods": len(rows), "new_keys": new, "key_ids": [key_id_of(unb64(r[1], 32, "key")) for r in rows],
        "retention_days": float(retention_days)})
    blob = canonical_json(document) + b"\n"
    return IssuedKeyring(blob, camera_id, document["keyring_id"], len(rows), new, bounds[0], bounds[-1])


# ---------------------------------------------------------------- expiry


@dataclass(frozen=True)
class Destroyed:
    camera_id: str
    key_id: str
    start_ms: int
    end_ms: int


def expire_keys(authority: Authority, at_ms: int | None = None, who: str = "authority expire",
                camera_ids: Sequence[str] | None = None, before_ms: int | None = None,
                from_ms: int | None = None) -> list[Destroyed]:
    """Destroy the sealed private key of every period whose records have expired
    (``destroy_after_ms <= at_ms``); or, to revoke or retire a camera, of every period of
    ``camera_ids`` that ends after ``from_ms`` (the current one included) and/or starts before
    ``before_ms``. Writes the vault without them and logs one entry per camera."""
    if (before_ms is not None or from_ms is not None) and not camera_ids:
        raise SnapsealError("destroying keys before/from a time needs the cameras named (--camera)")
    at_ms = now_ms() if at_ms is None else int(at_ms)
    cameras = list(camera_ids) if camera_ids is not None else authority.cameras()
    custodian = authority.custodian_key() if cameras else None
    destroyed: list[Destroyed] = []
    for camera_id in cameras:
        entries = authority.read_vault(camera_id)
        gone = []
        for entry in entries:
            if before_ms is None and from_ms is None:
                due = entry.destroy_after_ms <= at_ms
            else:
                due = ((from_ms is None or entry.end_ms > from_ms)
                       and (before_ms is None or entry.start_ms < before_ms))
            if entry.sealed is not None and due:
                entry.sealed, entry.destroyed_ms = None, at_ms
                gone.append(Destroyed(camera_id, entry.key_id, entry.start_ms, entry.end_ms))
        if gone:
            authority.write_vault(camera_id, entries)
            assert custodian is not None
            authority.log.append("keys-destroyed", custodian, who, now_ms=at_ms, detail={
                "camera_id": camera_id, "key_ids": [d.key_id for d in gone],
                "from_ms": gone[0].start_ms, "to_ms": gone[-1].end_ms})
            destroyed.extend(gone)
    return destroyed
