"""The sealed record's layout: header pack/parse, the signed payload, the metadata schema, errors.

Sealing is daemon/records/seal.py, the public signature check daemon/records/verify.py, opening
(with the investigator's private key, never on a camera) investigator/open.py.

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
from dataclasses import dataclass
from typing import Any

import cv2
import nacl.bindings
import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keys import key_id_of

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


def decode_png(png: bytes, source: str | os.PathLike | None) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise CorruptRecordError(source, "a signed image does not decode as PNG")
    return pixels


def parse_payload(payload: bytes, source: str | os.PathLike | None) -> tuple[dict[str, Any], list[bytes]]:
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


