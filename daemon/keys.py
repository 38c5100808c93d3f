"""Key pairs and key files: the investigator's X25519 pair and the camera's Ed25519 signing pair.

Who holds what (docs/SECURITY.md):

* the investigator's **private** key (X25519) never touches a camera; it opens records;
* the camera holds the investigator's **public** key (it seals records to it) and its own
  **device signing** key (Ed25519; it signs every record, so a record proves which camera made it);
* whoever checks records holds the device **public** keys they trust.

Key files are small JSON documents with a type tag, so a key of the wrong kind is a clear
one-line error instead of a crypto failure later::

    {"snapseal_key": "investigator-public", "version": 1,
     "key_id": "3f9a0c...", "key": "<base64 of 32 bytes>", "created": "2026-11-22T10:00:00Z"}

``snapseal_key`` is one of ``investigator-public``, ``investigator-private``, ``device-public``,
``device-private``. ``key`` holds the raw 32-byte public key, or for a private file the 32-byte
X25519 private key / Ed25519 seed. ``key_id`` is the first 8 bytes (16 hex digits) of the
SHA-256 of the *public* key, in both files of a pair; it is checked on load, which catches a
garbled file. Private key files are written 0600, atomically, and never overwritten unless asked.

API::

    InvestigatorKeyPair.generate() / DeviceKeyPair.generate()
    save_investigator_keys(pair, out_dir, force=False) -> (pub_path, key_path)
    save_device_keys(pair, out_dir, force=False)        -> (pub_path, key_path)
    load_investigator_public(path)  -> InvestigatorPublicKey
    load_investigator_private(path) -> InvestigatorKeyPair
    load_device_public(path)        -> DevicePublicKey
    load_device_signing(path)       -> DeviceKeyPair
    key_id_of(public_bytes) -> str

Private key files whose mode lets the group or others read or write them are refused on load
(``files.check_private_file``), as ssh refuses such keys. Atomic writes live in daemon/files.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.public
import nacl.signing

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.files import check_private_file, write_file_atomically

KEY_FILE_VERSION = 1
KEY_ID_BYTES = 8
MAX_KEY_FILE_BYTES = 4096  # a key file is ~200 bytes; anything much larger is not one

INVESTIGATOR_PUBLIC = "investigator-public"
INVESTIGATOR_PRIVATE = "investigator-private"
DEVICE_PUBLIC = "device-public"
DEVICE_PRIVATE = "device-private"
KEY_KINDS = {
    INVESTIGATOR_PUBLIC: "an investigator public key",
    INVESTIGATOR_PRIVATE: "an investigator private key",
    DEVICE_PUBLIC: "a device public key",
    DEVICE_PRIVATE: "a device signing (private) key",
}

# File names `snapseal keygen` writes (and the deploy scripts expect).
INVESTIGATOR_PUB_NAME = "investigator.pub"
INVESTIGATOR_KEY_NAME = "investigator.key"
DEVICE_PUB_NAME = "device.pub"
DEVICE_KEY_NAME = "device.key"


def key_id_of(public_bytes: bytes) -> str:
    """Short public name of a key: first 8 bytes of SHA-256(public key), as 16 hex digits."""
    return hashlib.sha256(bytes(public_bytes)).digest()[:KEY_ID_BYTES].hex()


@dataclass(frozen=True)
class InvestigatorPublicKey:
    key: nacl.public.PublicKey

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.key)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_bytes)


@dataclass(frozen=True)
class InvestigatorKeyPair:
    private: nacl.public.PrivateKey

    @classmethod
    def generate(cls) -> InvestigatorKeyPair:
        return cls(nacl.public.PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> InvestigatorKeyPair:
        return cls(nacl.public.PrivateKey(bytes(raw)))

    @property
    def public(self) -> InvestigatorPublicKey:
        return InvestigatorPublicKey(self.private.public_key)

    @property
    def private_bytes(self) -> bytes:
        return bytes(self.private)

    @property
    def key_id(self) -> str:
        return self.public.key_id


@dataclass(frozen=True)
class DevicePublicKey:
    verify_key: nacl.signing.VerifyKey

    @classmethod
    def from_bytes(cls, raw: bytes) -> DevicePublicKey:
        return cls(nacl.signing.VerifyKey(bytes(raw)))

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.verify_key)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_bytes)


@dataclass(frozen=True)
class DeviceKeyPair:
    signing_key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> DeviceKeyPair:
        return cls(nacl.signing.SigningKey.generate())

    @property
    def public(self) -> DevicePublicKey:
        return DevicePublicKey(self.signing_key.verify_key)

    @property
    def seed_bytes(self) -> bytes:
        return bytes(self.signing_key)

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """Detached 64-byte Ed25519 signature."""
        return self.signing_key.sign(message).signature


# ---------------------------------------------------------------- key files


def _encode_key_file(kind: str, key_id: str, raw: bytes) -> bytes:
    document = {
        "snapseal_key": kind,
        "version": KEY_FILE_VERSION,
        "key_id": key_id,
        "key": base64.b64encode(raw).decode("ascii"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")


def _read_key_document(path: Path, wanted: str) -> dict:
    """The parsed JSON of a snapseal key file with a type tag, or a one-line SnapsealError."""
    try:
        with open(path, "rb") as handle:
            blob = handle.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SnapsealError(f"{path}: key file not found (expected {wanted})") from None
    except IsADirectoryError:
        raise SnapsealError(f"{path}: is a directory, not a key file (expected {wanted})") from None
    except OSError as error:
        raise SnapsealError(f"{path}: cannot read key file: {error.strerror or error}") from None
    if len(blob) > MAX_KEY_FILE_BYTES:
        raise SnapsealError(f"{path}: not a snapseal key file (too large; expected {wanted})")
    try:
        document = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SnapsealError(f"{path}: not a snapseal key file (garbled; expected {wanted})") from None
    if not isinstance(document, dict) or "snapseal_key" not in document:
        raise SnapsealError(f"{path}: not a snapseal key file (no type tag; expected {wanted})")
    return document


def _read_key_file(path: Path, expected_kind: str) -> tuple[str, bytes]:
    """(key_id, raw 32 bytes) of a key file of ``expected_kind``, or a one-line SnapsealError."""
    path = Path(path)
    wanted = KEY_KINDS[expected_kind]
    document = _read_key_document(path, wanted)
    kind = document.get("snapseal_key")
    if kind != expected_kind:
        found = KEY_KINDS.get(kind) if isinstance(kind, str) else None
        hint = ""
        if expected_kind == INVESTIGATOR_PUBLIC and kind == INVESTIGATOR_PRIVATE:
            hint = "; give the camera investigator.pub, the private key must never be on a camera"
        raise SnapsealError(f"{path}: holds {found or repr(kind)}, expected {wanted}{hint}")
    if expected_kind in (INVESTIGATOR_PRIVATE, DEVICE_PRIVATE):
        check_private_file(path, wanted.replace("an ", "", 1).replace("a ", "", 1))
    if document.get("version") != KEY_FILE_VERSION:
        raise SnapsealError(f"{path}: key file version {document.get('version')!r} is not supported "
                            f"(this snapseal reads version {KEY_FILE_VERSION})")
    try:
        raw = base64.b64decode(str(document.get("key", "")), validate=True)
    except (binascii.Error, ValueError):
        raise SnapsealError(f"{path}: garbled key (not base64)") from None
    if len(raw) != 32:
        raise SnapsealError(f"{path}: garbled key ({len(raw)} bytes, expected 32)")
    key_id = document.get("key_id")
    if not isinstance(key_id, str):
        raise SnapsealError(f"{path}: garbled key file (no key_id)")
    return key_id, raw


def _check_key_id(path: Path, stated: str, actual: str) -> None:
    if stated != actual:
        raise SnapsealError(f"{path}: garbled key (key_id {stated!r} does not match the key, {actual})")


def load_investigator_public(path: Path | str) -> InvestigatorPublicKey:
    stated, raw = _read_key_file(Path(path), INVESTIGATOR_PUBLIC)
    key = InvestigatorPublicKey(nacl.public.PublicKey(raw))
    _check_key_id(Path(path), stated, key.key_id)
    return key


def load_investigator_private(path: Path | str) -> InvestigatorKeyPair:
    stated, raw = _read_key_file(Path(path), INVESTIGATOR_PRIVATE)
    pair = InvestigatorKeyPair.from_private_bytes(raw)
    _check_key_id(Path(path), stated, pair.key_id)
    return pair


def load_device_public(path: Path | str) -> DevicePublicKey:
    stated, raw = _read_key_file(Path(path), DEVICE_PUBLIC)
    try:
        key = DevicePublicKey.from_bytes(raw)
    except (ValueError, nacl.exceptions.CryptoError):
        raise SnapsealError(f"{path}: garbled device public key") from None
    _check_key_id(Path(path), stated, key.key_id)
    return key


def load_device_signing(path: Path | str) -> DeviceKeyPair:
    stated, raw = _read_key_file(Path(path), DEVICE_PRIVATE)
    pair = DeviceKeyPair(nacl.signing.SigningKey(raw))
    _check_key_id(Path(path), stated, pair.key_id)
    return pair


def investigator_private_file_bytes(pair: InvestigatorKeyPair) -> bytes:
    return _encode_key_file(INVESTIGATOR_PRIVATE, pair.key_id, pair.private_bytes)


def _save_pair(out_dir: Path, files: list[tuple[str, bytes, int]], force: bool) -> list[Path]:
    """Write several key files; check none exists first so we never leave half a pair."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SnapsealError(f"{out_dir}: cannot create key directory: {error.strerror or error}") from None
    targets = [out_dir / name for name, _, _ in files]
    if not force:
        existing = [str(target) for target in targets if target.exists()]
        if existing:
            raise SnapsealError(f"{existing[0]}: exists; refusing to overwrite a key (use --force)")
    written = []
    for target, (_, data, mode) in zip(targets, files):
        try:
            written.append(write_file_atomically(target, data, mode=mode, overwrite=force))
        except FileExistsError:
            raise SnapsealError(f"{target}: exists; refusing to overwrite a key (use --force)") from None
        except OSError as error:
            raise SnapsealError(f"{target}: cannot write key file: {error.strerror or error}") from None
    return written


def save_investigator_keys(pair: InvestigatorKeyPair, out_dir: Path | str, force: bool = False) -> tuple[Path, Path]:
    """Write ``out_dir/investigator.pub`` (0644) and ``out_dir/investigator.key`` (0600)."""
    pub_path, key_path = _save_pair(Path(out_dir), [
        (INVESTIGATOR_PUB_NAME, _encode_key_file(INVESTIGATOR_PUBLIC, pair.key_id, pair.public.public_bytes), 0o644),
        (INVESTIGATOR_KEY_NAME, investigator_private_file_bytes(pair), 0o600),
    ], force)
    return pub_path, key_path


def save_device_keys(pair: DeviceKeyPair, out_dir: Path | str, force: bool = False) -> tuple[Path, Path]:
    """Write ``out_dir/device.pub`` (0644) and ``out_dir/device.key`` (0600)."""
    pub_path, key_path = _save_pair(Path(out_dir), [
        (DEVICE_PUB_NAME, _encode_key_file(DEVICE_PUBLIC, pair.key_id, pair.public.public_bytes), 0o644),
        (DEVICE_KEY_NAME, _encode_key_file(DEVICE_PRIVATE, pair.key_id, pair.seed_bytes), 0o600),
    ], force)
    return pub_path, key_path


def save_investigator_private(pair: InvestigatorKeyPair, path: Path | str, force: bool = False) -> Path:
    """Write one investigator private key file (0600), e.g. after recombining SLIP-39 shares."""
    (written,) = _save_pair(Path(path).parent, [(Path(path).name, investigator_private_file_bytes(pair), 0o600)], force)
    return written


def describe_key_file(path: Path | str) -> tuple[str, str]:
    """(kind, key_id) of any snapseal key file, fully checked, for `snapseal key info`."""
    loaders = {INVESTIGATOR_PUBLIC: load_investigator_public, INVESTIGATOR_PRIVATE: load_investigator_private,
               DEVICE_PUBLIC: load_device_public, DEVICE_PRIVATE: load_device_signing}
    kind = _read_key_document(Path(path), "a snapseal key").get("snapseal_key")
    if kind not in loaders:
        raise SnapsealError(f"{path}: unknown key type {kind!r}")
    return kind, loaders[kind](path).key_id


# ---------------------------------------------------------------- the investigator's trusted devices

TRUST_FILE_NAME = "trusted-devices.json"  # beside investigator.key
TRUST_FILE_VERSION = 1
MAX_TRUST_FILE_BYTES = 1024 * 1024


def trust_file_beside(key_path: Path | str) -> Path:
    """Where the trusted device set of an investigator key lives: the same directory."""
    return Path(key_path).parent / TRUST_FILE_NAME


def load_trust_file(path: Path | str) -> list[tuple[DevicePublicKey, str]]:
    """The trusted device keys (with each one's label) of a trust file; a one-line error for a
    missing, garbled or group/world-writable file (anyone who may write it decides what opens)."""
    import stat as _stat

    path = Path(path)
    try:
        info = path.stat()
        with open(path, "rb") as handle:
            blob = handle.read(MAX_TRUST_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SnapsealError(f"{path}: trust file not found") from None
    except OSError as error:
        raise SnapsealError(f"{path}: cannot read trust file: {error.strerror or error}") from None
    if _stat.S_IMODE(info.st_mode) & 0o022:
        raise SnapsealError(f"{path}: trust file is writable by others (mode {_stat.S_IMODE(info.st_mode):04o}); "
                            f"refusing it (chmod 644 {path})")
    try:
        document = json.loads(blob.decode("utf-8"))
        if not isinstance(document, dict) or document.get("snapseal_trust") != TRUST_FILE_VERSION:
            raise ValueError("not a version 1 snapseal trust file")
        devices = document["devices"]
        if not isinstance(devices, list):
            raise ValueError("devices is not a list")
        out = []
        for entry in devices:
            raw = base64.b64decode(str(entry["key"]), validate=True)
            key = DevicePublicKey.from_bytes(raw)
            if entry.get("key_id") != key.key_id:
                raise ValueError(f"key_id {entry.get('key_id')!r} does not match its key")
            out.append((key, str(entry.get("label", ""))))
        return out
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error, nacl.exceptions.CryptoError) as error:
        raise SnapsealError(f"{path}: garbled trust file ({str(error).splitlines()[0] if str(error) else 'bad entry'})") from None


def add_trusted_device(path: Path | str, device: DevicePublicKey, label: str = "") -> bool:
    """Add ``device`` to the trust file at ``path`` (created 0644 if missing); False if it was there."""
    path = Path(path)
    entries = load_trust_file(path) if path.exists() else []
    if any(key.public_bytes == device.public_bytes for key, _ in entries):
        return False
    entries.append((device, label))
    document = {"snapseal_trust": TRUST_FILE_VERSION,
                "devices": [{"key_id": key.key_id, "key": base64.b64encode(key.public_bytes).decode("ascii"),
                             "label": name} for key, name in entries]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomically(path, (json.dumps(document, indent=1) + "\n").encode("utf-8"), mode=0o644, overwrite=True)
    except OSError as error:
        raise SnapsealError(f"{path}: cannot write trust file: {error.strerror or error}") from None
    return True
