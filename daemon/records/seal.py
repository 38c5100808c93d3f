"""The sealed record: one face crop (plus optional top-k crops / a short clip), signed by the
camera and readable only by the investigator (DESIGN.md, "Sealed record").

Byte layout (format version 1; all integers big-endian)::

    offset  size  field
    ------  ----  -----------------------------------------------------------------------
         0     8  magic  b"SNAPSEAL"
         8     2  format version, u16 (= 1)
        10     2  flags, u16 (= 0; a reader refuses unknown flags)
        12    16  record id (random, 128 bits; the file is <hex id>.snap)
        28     8  created, i64 milliseconds since the Unix epoch (UTC)
        36     8  expires, i64 milliseconds since the Unix epoch (UTC)
        44     8  recipient key id (first 8 bytes of SHA-256 of the investigator X25519 public key)
        52    32  device Ed25519 public key (its key id = first 8 bytes of its SHA-256)
        84     4  body length N, u32
    ------  ----  ---- plaintext header ends: 88 bytes (HEADER_SIZE) --------------------------
        88    64  outer signature: Ed25519 by the device over
                  b"snapseal/record/v1/outer\\0" || header (88) || body (N)
       152     N  body = libsodium sealed box (X25519 + XSalsa20-Poly1305, 48 bytes overhead)
                  to the investigator public key of the inner message:

    inner message (only the investigator sees it)
         0    64  inner signature: Ed25519 by the device over
                  b"snapseal/record/v1/inner\\0" || header (88) || payload
        64    88  a copy of the plaintext header (open checks it equals the outer one)
       152     P  payload:
                    4  M, u32 ;  M bytes  metadata JSON (UTF-8, sorted keys)
                    2  C, u16 (number of images, >= 1; the first is the kept crop)
                    C x (4  L, u32 ;  L bytes  PNG, lossless, encoded in memory)

    N = 48 + 64 + 88 + P; record size = 152 + N.

Metadata JSON: ``camera_id, track_id, frame_time, box [x1,y1,x2,y2], score, scorer, model_id,
device_key_id, images: [{role: "best"|"extra"|"clip", frame_time, box, score}, ...]`` (one
entry per PNG, in order). A non-finite score is stored as null.

Fixed overhead per record: 88 + 64 + 48 + 64 + 88 + 4 + 2 + 4 per image = 362 bytes with one
image, plus the metadata JSON (~300 bytes).

What each check proves:

* ``verify_record`` (public information only, no private key): the magic, version and exact
  length are right, and the outer signature holds, i.e. the header (expiry, recipient,
  record id) and the ciphertext are exactly what the holder of the device key in the header
  wrote; with ``trusted_device_keys`` also that this device is one of yours. It cannot say
  anything about the crop inside: a sealed box can only be opened with the private key.
* ``open_record`` (investigator): all of the above, then decrypts and checks the inner
  signature over the plaintext content (so the proof survives re-encryption for another key),
  that the signed header copy equals the plaintext header, and that the PNGs decode. Sealed
  boxes hide their sender; the signatures are what say which camera made a record. Without a
  trust set they prove integrity and *a* device key id, not that the device is yours: pass
  ``trusted_device_keys`` (``snapseal open --trust device.pub``).

API (for the pipeline)::

    sealer = RecordSealer(recipient_pub, device_key, camera_id="cam-01", retention=timedelta(days=10))
    record_bytes = sealer.seal(crop_u8, CropMeta(track_id=7, frame_time=t, box=(x1, y1, x2, y2),
                                                 score=s, scorer="default", model_id="vae-..."),
                               extras=[SealedImage(pixels, frame_time, role="extra"|"clip", box, score)])
    CropMeta.from_scored(scored_crop, track_id, model_id) / SealedImage.from_scored(scored_crop, role)

For readers: ``parse_header(bytes) -> RecordHeader``, ``verify_record(bytes,
trusted_device_keys=None) -> RecordHeader``, ``open_record(bytes, investigator_key,
trusted_device_keys=None) -> OpenedRecord``. Every failure is a ``RecordError`` subclass
(a SnapsealError) with a short ``reason``: not-a-record, unsupported-version, corrupt,
tampered, untrusted-device, wrong-key.
"""

from __future__ import annotations

import json
import math
import os
import struct
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterable, Sequence

import cv2
import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keys import (
    DeviceKeyPair,
    DevicePublicKey,
    InvestigatorKeyPair,
    InvestigatorPublicKey,
    key_id_of,
)

MAGIC = b"SNAPSEAL"
FORMAT_VERSION = 1
HEADER_STRUCT = struct.Struct(">8sHH16sqq8s32sI")
HEADER_SIZE = HEADER_STRUCT.size  # 88
SIGNATURE_SIZE = 64
PREFIX_SIZE = HEADER_SIZE + SIGNATURE_SIZE  # header + outer signature, before the body
SEALED_BOX_OVERHEAD = nacl.bindings.crypto_box_SEALBYTES  # 48
OUTER_DOMAIN = b"snapseal/record/v1/outer\x00"
INNER_DOMAIN = b"snapseal/record/v1/inner\x00"
MAX_RECORD_BYTES = 64 * 1024 * 1024  # far above any crop + clip; refuses absurd lengths early
RECORD_SUFFIX = ".snap"
IMAGE_ROLES = ("best", "extra", "clip")
PNG_COMPRESSION = 6

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


# ---------------------------------------------------------------- errors


class RecordError(SnapsealError):
    """A record that can't be trusted or read; ``reason`` is a short machine-readable word."""

    reason = "invalid"

    def __init__(self, source: str | os.PathLike | None, detail: str):
        self.source = str(source) if source is not None else "record"
        self.detail = detail
        super().__init__(f"{self.source}: {self.reason}: {detail}")


class NotARecordError(RecordError):
    reason = "not-a-record"


class UnsupportedVersionError(RecordError):
    reason = "unsupported-version"


class CorruptRecordError(RecordError):
    reason = "corrupt"


class TamperedRecordError(RecordError):
    reason = "tampered"


class UntrustedDeviceError(RecordError):
    reason = "untrusted-device"


class WrongRecipientError(RecordError):
    reason = "wrong-key"


# ---------------------------------------------------------------- data


def _ms_to_seconds(ms: int) -> float:
    return ms / 1000.0


def _seconds_to_ms(seconds: float) -> int:
    return int(round(float(seconds) * 1000.0))


def iso_utc(seconds: float) -> str:
    """Seconds since the epoch -> '2026-11-22T10:00:00.123Z'."""
    whole_seconds, milliseconds = divmod(_seconds_to_ms(seconds), 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole_seconds))}.{milliseconds:03d}Z"


@dataclass(frozen=True)
class RecordHeader:
    """The plaintext part: enough to list and expire a record without any key."""

    record_id: str  # 32 hex digits
    created_ms: int
    expires_ms: int
    recipient_key_id: str  # 16 hex digits
    device_public_key: bytes  # 32 bytes, Ed25519
    body_length: int
    version: int = FORMAT_VERSION

    @property
    def created(self) -> float:
        return _ms_to_seconds(self.created_ms)

    @property
    def expires(self) -> float:
        return _ms_to_seconds(self.expires_ms)

    @property
    def device_key_id(self) -> str:
        return key_id_of(self.device_public_key)

    @property
    def record_length(self) -> int:
        return PREFIX_SIZE + self.body_length

    @property
    def file_name(self) -> str:
        return self.record_id + RECORD_SUFFIX

    def is_expired(self, now: float) -> bool:
        return self.expires_ms <= _seconds_to_ms(now)

    def pack(self) -> bytes:
        return HEADER_STRUCT.pack(MAGIC, self.version, 0, bytes.fromhex(self.record_id), self.created_ms,
                                  self.expires_ms, bytes.fromhex(self.recipient_key_id),
                                  self.device_public_key, self.body_length)

    def summary(self) -> dict[str, Any]:
        """JSON-ready view for `snapseal ls --json`."""
        return {
            "record_id": self.record_id,
            "version": self.version,
            "created": self.created,
            "created_utc": iso_utc(self.created),
            "expires": self.expires,
            "expires_utc": iso_utc(self.expires),
            "recipient_key_id": self.recipient_key_id,
            "device_key_id": self.device_key_id,
            "size": self.record_length,
        }


def _as_box(box: Any) -> tuple[float, float, float, float] | None:
    if box is None:
        return None
    if hasattr(box, "as_list"):  # snapseal.daemon.types.Box
        box = box.as_list()
    values = tuple(float(v) for v in box)
    if len(values) != 4:
        raise ValueError(f"a box has 4 numbers (x1, y1, x2, y2), got {len(values)}")
    return values  # type: ignore[return-value]


def _as_score(score: Any) -> float | None:
    """Scores go into JSON: a non-finite one (a scorer's -inf) is stored as null."""
    if score is None:
        return None
    value = float(score)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class CropMeta:
    """What the pipeline knows about the kept crop; signed and sealed with it."""

    track_id: int
    frame_time: float  # seconds since the epoch, when the frame was captured
    box: tuple[float, float, float, float]  # in frame pixels; a types.Box is accepted
    score: float | None
    scorer: str
    model_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "track_id", int(self.track_id))
        object.__setattr__(self, "frame_time", float(self.frame_time))
        object.__setattr__(self, "box", _as_box(self.box))
        object.__setattr__(self, "score", _as_score(self.score))
        object.__setattr__(self, "scorer", str(self.scorer))
        object.__setattr__(self, "model_id", str(self.model_id))

    @classmethod
    def from_scored(cls, scored: Any, track_id: int, model_id: str) -> CropMeta:
        """From a ``types.ScoredCrop`` (its crop's detection box and timestamp)."""
        return cls(track_id=track_id, frame_time=scored.crop.timestamp, box=scored.crop.detection.box,
                   score=scored.score, scorer=scored.scorer, model_id=model_id)


@dataclass(frozen=True)
class SealedImage:
    """An extra image sealed with the kept crop: one of the top-k ("extra") or a clip frame."""

    pixels: np.ndarray
    frame_time: float
    role: str = "extra"
    box: tuple[float, float, float, float] | None = None
    score: float | None = None

    def __post_init__(self) -> None:
        if self.role not in ("extra", "clip"):
            raise ValueError(f"an extra image's role is 'extra' or 'clip', not {self.role!r}")
        object.__setattr__(self, "frame_time", float(self.frame_time))
        object.__setattr__(self, "box", _as_box(self.box))
        object.__setattr__(self, "score", _as_score(self.score))

    @classmethod
    def from_scored(cls, scored: Any, role: str = "extra") -> SealedImage:
        return cls(pixels=scored.crop.pixels, frame_time=scored.crop.timestamp, role=role,
                   box=scored.crop.detection.box, score=scored.score)


@dataclass(frozen=True)
class OpenedImage:
    role: str
    frame_time: float
    box: tuple[float, float, float, float] | None
    score: float | None
    png: bytes  # exactly the bytes the camera encoded
    pixels: np.ndarray


@dataclass(frozen=True)
class OpenedRecord:
    """A record after ``open_record``: every signature checked, the content decrypted."""

    header: RecordHeader
    camera_id: str
    meta: CropMeta
    images: tuple[OpenedImage, ...]  # images[0] is the kept crop
    device_trusted: bool  # True when checked against a trust set

    @property
    def crop(self) -> np.ndarray:
        return self.images[0].pixels

    @property
    def crop_png(self) -> bytes:
        return self.images[0].png

    @property
    def extras(self) -> tuple[OpenedImage, ...]:
        return self.images[1:]

    def summary(self) -> dict[str, Any]:
        """What `snapseal open` writes to <record-id>.json."""
        return {
            "record_id": self.header.record_id,
            "camera_id": self.camera_id,
            "track_id": self.meta.track_id,
            "frame_time": self.meta.frame_time,
            "frame_time_utc": iso_utc(self.meta.frame_time),
            "box": list(self.meta.box),
            "score": self.meta.score,
            "scorer": self.meta.scorer,
            "model_id": self.meta.model_id,
            "device_key_id": self.header.device_key_id,
            "device_trusted": self.device_trusted,
            "recipient_key_id": self.header.recipient_key_id,
            "created": self.header.created,
            "created_utc": iso_utc(self.header.created),
            "expires": self.header.expires,
            "expires_utc": iso_utc(self.header.expires),
            "images": [{"role": image.role, "frame_time": image.frame_time,
                        "box": list(image.box) if image.box else None, "score": image.score}
                       for image in self.images],
        }


# ---------------------------------------------------------------- reading


def parse_header(data: bytes, source: str | os.PathLike | None = None) -> RecordHeader:
    """The plaintext header at the start of ``data`` (at least HEADER_SIZE bytes). No crypto."""
    if len(data) < HEADER_SIZE or not bytes(data[:len(MAGIC)]) == MAGIC:
        raise NotARecordError(source, "no snapseal header (bad magic or too short)")
    magic, version, flags, record_id, created_ms, expires_ms, recipient_id, device_pk, body_length = \
        HEADER_STRUCT.unpack_from(data, 0)
    if version != FORMAT_VERSION:
        raise UnsupportedVersionError(source, f"format version {version}, this snapseal reads {FORMAT_VERSION}")
    if flags != 0:
        raise UnsupportedVersionError(source, f"unknown flags 0x{flags:04x}")
    if body_length > MAX_RECORD_BYTES:
        raise CorruptRecordError(source, f"body length {body_length} is not plausible")
    return RecordHeader(record_id=record_id.hex(), created_ms=created_ms, expires_ms=expires_ms,
                        recipient_key_id=recipient_id.hex(), device_public_key=device_pk,
                        body_length=body_length, version=version)


def _trusted_key_set(trusted_device_keys: Iterable[DevicePublicKey | bytes] | None) -> set[bytes] | None:
    if trusted_device_keys is None:
        return None
    return {key.public_bytes if isinstance(key, DevicePublicKey) else bytes(key) for key in trusted_device_keys}


def verify_record(data: bytes, trusted_device_keys: Iterable[DevicePublicKey | bytes] | None = None,
                  source: str | os.PathLike | None = None) -> RecordHeader:
    """Check structure and the outer device signature with public information only."""
    data = bytes(data)
    header = parse_header(data, source)
    if len(data) != header.record_length:
        what = "truncated" if len(data) < header.record_length else "has trailing bytes"
        raise CorruptRecordError(source, f"{what}: {len(data)} bytes, the header says {header.record_length}")
    if header.body_length < SEALED_BOX_OVERHEAD + SIGNATURE_SIZE + HEADER_SIZE:
        raise CorruptRecordError(source, f"body of {header.body_length} bytes is too short to hold a record")
    outer_signature = data[HEADER_SIZE:PREFIX_SIZE]
    try:
        nacl.signing.VerifyKey(header.device_public_key).verify(
            OUTER_DOMAIN + data[:HEADER_SIZE] + data[PREFIX_SIZE:], outer_signature)
    except (nacl.exceptions.CryptoError, ValueError):
        raise TamperedRecordError(source, "the device signature over header and ciphertext does not match") from None
    trusted = _trusted_key_set(trusted_device_keys)
    if trusted is not None and header.device_public_key not in trusted:
        raise UntrustedDeviceError(source, f"signed by device key {header.device_key_id}, which is not in the trusted set")
    return header


def _decode_png(png: bytes, source: str | os.PathLike | None) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise CorruptRecordError(source, "a signed image does not decode as PNG")
    return pixels


def _parse_payload(payload: bytes, source: str | os.PathLike | None) -> tuple[dict[str, Any], list[bytes]]:
    try:
        (meta_length,) = _U32.unpack_from(payload, 0)
        offset = _U32.size
        meta = json.loads(payload[offset:offset + meta_length].decode("utf-8"))
        offset += meta_length
        (count,) = _U16.unpack_from(payload, offset)
        offset += _U16.size
        images = []
        for _ in range(count):
            (length,) = _U32.unpack_from(payload, offset)
            offset += _U32.size
            if offset + length > len(payload):
                raise ValueError("image runs past the end")
            images.append(payload[offset:offset + length])
            offset += length
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        raise CorruptRecordError(source, f"signed payload does not parse ({error})") from None
    if offset != len(payload) or count < 1 or not isinstance(meta, dict):
        raise CorruptRecordError(source, "signed payload has the wrong shape")
    return meta, images


def open_record(data: bytes, investigator_key: InvestigatorKeyPair,
                trusted_device_keys: Iterable[DevicePublicKey | bytes] | None = None,
                source: str | os.PathLike | None = None) -> OpenedRecord:
    """Verify, decrypt and check everything; raise a RecordError subclass on any problem."""
    data = bytes(data)
    header = verify_record(data, trusted_device_keys, source)
    if header.recipient_key_id != investigator_key.key_id:
        raise WrongRecipientError(source, f"sealed to key {header.recipient_key_id}, not to {investigator_key.key_id}")
    try:
        inner = nacl.public.SealedBox(investigator_key.private).decrypt(data[PREFIX_SIZE:])
    except nacl.exceptions.CryptoError:
        raise TamperedRecordError(source, "the sealed box does not open with this key") from None
    inner_signature, inner_header, payload = inner[:SIGNATURE_SIZE], inner[SIGNATURE_SIZE:PREFIX_SIZE], inner[PREFIX_SIZE:]
    if inner_header != data[:HEADER_SIZE]:
        raise TamperedRecordError(source, "the plaintext header differs from the signed copy inside")
    try:
        nacl.signing.VerifyKey(header.device_public_key).verify(INNER_DOMAIN + inner_header + payload, inner_signature)
    except (nacl.exceptions.CryptoError, ValueError):
        raise TamperedRecordError(source, "the device signature over the content does not match") from None
    meta, pngs = _parse_payload(payload, source)
    try:
        if meta.get("device_key_id") != header.device_key_id:
            raise ValueError("device key id differs from the header's")
        descriptions = meta["images"]
        if not isinstance(descriptions, list) or len(descriptions) != len(pngs):
            raise ValueError("image list does not match the images")
        images = tuple(
            OpenedImage(role=str(description["role"]), frame_time=float(description["frame_time"]),
                        box=_as_box(description.get("box")), score=_as_score(description.get("score")),
                        png=png, pixels=_decode_png(png, source))
            for description, png in zip(descriptions, pngs))
        crop_meta = CropMeta(track_id=meta["track_id"], frame_time=meta["frame_time"], box=meta["box"],
                             score=meta.get("score"), scorer=meta["scorer"], model_id=meta["model_id"])
        camera_id = str(meta["camera_id"])
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptRecordError(source, f"signed metadata is incomplete ({error})") from None
    return OpenedRecord(header=header, camera_id=camera_id, meta=crop_meta, images=images,
                        device_trusted=trusted_device_keys is not None)


# ---------------------------------------------------------------- sealing


def encode_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG in memory (cv2.imencode): a crop never touches disk unencrypted."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"a crop is uint8, got {pixels.dtype}")
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4))) or pixels.size == 0:
        raise ValueError(f"a crop is H x W (gray) or H x W x 1/3/4, got shape {pixels.shape}")
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError("cv2.imencode could not encode the crop as PNG")
    return encoded.tobytes()


def seal_record(crop: np.ndarray, meta: CropMeta, camera_id: str, recipient: InvestigatorPublicKey,
                device: DeviceKeyPair, created: float, expires: float, extras: Sequence[SealedImage] = (),
                record_id: str | None = None) -> bytes:
    """Build one record (layout in the module docstring). ``RecordSealer`` is the friendly way in."""
    images = [("best", meta.frame_time, meta.box, meta.score, encode_png(crop))]
    images += [(extra.role, extra.frame_time, extra.box, extra.score, encode_png(extra.pixels)) for extra in extras]
    meta_json = json.dumps({
        "camera_id": str(camera_id),
        "track_id": meta.track_id,
        "frame_time": meta.frame_time,
        "box": list(meta.box),
        "score": meta.score,
        "scorer": meta.scorer,
        "model_id": meta.model_id,
        "device_key_id": device.key_id,
        "images": [{"role": role, "frame_time": frame_time, "box": list(box) if box else None, "score": score}
                   for role, frame_time, box, score, _ in images],
    }, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(images) > 0xFFFF:
        raise ValueError("too many images for one record")
    payload = b"".join([_U32.pack(len(meta_json)), meta_json, _U16.pack(len(images))]
                       + [_U32.pack(len(png)) + png for *_, png in images])
    header = RecordHeader(
        record_id=record_id or os.urandom(16).hex(),
        created_ms=_seconds_to_ms(created),
        expires_ms=_seconds_to_ms(expires),
        recipient_key_id=recipient.key_id,
        device_public_key=device.public.public_bytes,
        body_length=SEALED_BOX_OVERHEAD + PREFIX_SIZE + len(payload),
    ).pack()
    inner_signature = device.sign(INNER_DOMAIN + header + payload)
    body = nacl.public.SealedBox(recipient.key).encrypt(inner_signature + header + payload)
    assert len(body) == SEALED_BOX_OVERHEAD + PREFIX_SIZE + len(payload)
    outer_signature = device.sign(OUTER_DOMAIN + header + body)
    return header + outer_signature + body


@dataclass
class RecordSealer:
    """Seals crops for one camera: ``RecordSealer(recipient_pub, device_key, camera_id, retention)``.

    ``retention`` is a timedelta or seconds; a record expires ``retention`` after it is sealed.
    ``clock`` (seconds since the epoch) is injectable for tests. Holds only public/signing keys.
    """

    recipient_pub: InvestigatorPublicKey
    device_key: DeviceKeyPair
    camera_id: str
    retention: timedelta | float
    clock: Callable[[], float] = field(default=time.time, repr=False)
    retention_seconds: float = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.recipient_pub, InvestigatorPublicKey):
            raise TypeError("recipient_pub is an InvestigatorPublicKey (keys.load_investigator_public)")
        if not isinstance(self.device_key, DeviceKeyPair):
            raise TypeError("device_key is a DeviceKeyPair (keys.load_device_signing)")
        seconds = self.retention.total_seconds() if isinstance(self.retention, timedelta) else float(self.retention)
        if not seconds > 0:
            raise ValueError(f"retention must be positive, got {self.retention!r}")
        self.retention_seconds = seconds

    def seal(self, crop: np.ndarray, meta: CropMeta, extras: Sequence[SealedImage] = (),
             now: float | None = None) -> bytes:
        created = self.clock() if now is None else float(now)
        return seal_record(crop, meta, self.camera_id, self.recipient_pub, self.device_key,
                           created=created, expires=created + self.retention_seconds, extras=extras)


__all__ = [
    "CropMeta", "SealedImage", "RecordSealer", "RecordHeader", "OpenedRecord", "OpenedImage",
    "parse_header", "verify_record", "open_record", "seal_record", "encode_png",
    "RecordError", "NotARecordError", "UnsupportedVersionError", "CorruptRecordError",
    "TamperedRecordError", "UntrustedDeviceError", "WrongRecipientError",
    "HEADER_SIZE", "PREFIX_SIZE", "SIGNATURE_SIZE", "SEALED_BOX_OVERHEAD", "RECORD_SUFFIX",
]
