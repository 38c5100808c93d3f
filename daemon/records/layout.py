"""The sealed record's layout: header pack/parse, the signed payload, the one metadata schema,
and the errors every reader gives. The specification an outsider implements from is
docs/FORMAT.md; this module is its reference implementation.

Sealing is daemon/records/seal.py, the public signature check daemon/records/verify.py, opening
(with the investigator's private key, never on a camera) investigator/open.py.

Format version 2 (written; all integers big-endian)::

    offset  size  field
         0     8  magic  b"SNAPSEAL"
         8     2  format version, u16 (= 2)
        10     2  flags, u16 (= 0)
        12    16  record id
        28     8  created, i64 seconds since the epoch, COARSE: floored to the header resolution
        36     8  expires, i64 seconds since the epoch, coarse (floor of exact created + retention)
        44     8  recipient key id
        52    32  device Ed25519 public key
        84     8  sequence, u64 (per device key, 1, 2, 3, ...; 0 = the writer keeps none)
        92     4  body length N, u32
    -- 96 bytes of plaintext header; then the 64-byte outer signature over
       b"snapseal/record/v2/outer\\0" || header || body, then the body (a sealed box of
       inner signature (64) || header copy (96) || payload; inner domain b"snapseal/record/v2/inner\\0").

Version 1 (still read): the same with an 88-byte header (no sequence; created/expires in exact
milliseconds) and the v1 domain strings. Payload (both)::

    u32 M ; M bytes metadata JSON (UTF-8) ; u16 C (>= 1) ; C x (u32 L ; L bytes PNG)

The metadata's fields, types and limits are ``META_FIELDS_V2`` / ``IMAGE_FIELDS_V2`` below
(v1: ``META_FIELDS_V1`` / ``IMAGE_FIELDS_V1``): ``build_metadata`` writes them,
``parse_metadata`` checks them strictly (unknown or missing keys, wrong JSON types, NaN,
duplicate keys, out-of-range values are errors), and ``opened_summary`` is what `snapseal open`
writes. Every failure is a ``RecordError`` subclass with a short ``reason``.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import nacl.bindings
import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keys import key_id_of

MAGIC = b"SNAPSEAL"
FORMAT_VERSION = 2  # what the sealer writes
READ_VERSIONS = (1, 2)
HEADER_STRUCTS = {1: struct.Struct(">8sHH16sqq8s32sI"), 2: struct.Struct(">8sHH16sqq8s32sQI")}
HEADER_SIZES = {version: s.size for version, s in HEADER_STRUCTS.items()}  # {1: 88, 2: 96}
HEADER_STRUCT = HEADER_STRUCTS[FORMAT_VERSION]
HEADER_SIZE = HEADER_SIZES[FORMAT_VERSION]  # 96
MIN_HEADER_SIZE = min(HEADER_SIZES.values())
SIGNATURE_SIZE = 64
PREFIX_SIZE = HEADER_SIZE + SIGNATURE_SIZE  # header + outer signature, before the body
SEALED_BOX_OVERHEAD = nacl.bindings.crypto_box_SEALBYTES  # 48
OUTER_DOMAINS = {1: b"snapseal/record/v1/outer\x00", 2: b"snapseal/record/v2/outer\x00"}
INNER_DOMAINS = {1: b"snapseal/record/v1/inner\x00", 2: b"snapseal/record/v2/inner\x00"}
OUTER_DOMAIN = OUTER_DOMAINS[FORMAT_VERSION]
INNER_DOMAIN = INNER_DOMAINS[FORMAT_VERSION]
MAX_RECORD_BYTES = 64 * 1024 * 1024  # far above any crop + evidence; refuses absurd lengths early
MAX_META_BYTES = 64 * 1024
MAX_IMAGES = 64
RECORD_SUFFIX = ".snap"
META_SCHEMA_V2 = "snapseal.record-meta/2"
IMAGE_ROLES_V1 = ("best", "extra", "clip")
IMAGE_ROLES = ("best", "extra", "clip", "evidence", "person")  # v2; a closed set (safe in file names)
COLOUR_ROLES = ("evidence", "person")
MAX_TEXT = 128  # characters in camera_id, scorer, model_id
MAX_TIME_S = 253402300799  # 9999-12-31T23:59:59Z: every time field is in [0, MAX_TIME_S]
MAX_COORD = 1e6  # |box coordinates| in pixels
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COMPRESSION = 6
DEFAULT_HEADER_RESOLUTION_S = 3600

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


# ---------------------------------------------------------------- errors


class RecordError(SnapsealError):
    """A record that can't be trusted or read; ``reason`` is a short machine-readable word."""

    reason = "invalid"

    def __init__(self, source: str | os.PathLike | None, detail: str):
        self.source = str(source) if source is not None else "record"
        self.detail = detail
        super().__init__(f"{printable(self.source)}: {self.reason}: {detail}")


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


class KeyRefusedError(RecordError):
    """A key source (e.g. a warrant) refused to open this record; ``detail`` says why."""

    reason = "refused"


# ---------------------------------------------------------------- text and time


def printable(text: str) -> str:
    """``text`` safe for a terminal and a log line: control, format (bidi) and other
    non-printable characters become ``\\xNN`` / ``\\uNNNN`` escapes; the backslash itself too."""
    out = []
    for char in str(text):
        if char == "\\":
            out.append("\\\\")
        elif char.isprintable() and unicodedata.category(char) not in ("Cf", "Co", "Cs", "Zl", "Zp"):
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return "".join(out)


def _ms_to_seconds(ms: int) -> float:
    return ms / 1000.0


def _seconds_to_ms(seconds: float) -> int:
    return int(round(float(seconds) * 1000.0))


def iso_utc(seconds: float) -> str:
    """Seconds since the epoch -> '2026-11-22T10:00:00.123Z' (out-of-range times as '<n> s')."""
    try:
        whole_seconds, milliseconds = divmod(_seconds_to_ms(seconds), 1000)
        return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole_seconds))}.{milliseconds:03d}Z"
    except (OverflowError, ValueError, OSError):
        return f"{seconds!r} s since the epoch"


def coarse_seconds(seconds: float, resolution_s: int) -> int:
    """``seconds`` floored to a multiple of ``resolution_s`` (the plaintext header's granularity)."""
    return int(math.floor(float(seconds) / resolution_s)) * resolution_s


# ---------------------------------------------------------------- header


@dataclass(frozen=True)
class RecordHeader:
    """The plaintext part: enough to list and expire a record without any key.

    ``created_ms``/``expires_ms`` are milliseconds; in a version-2 header they are whole
    seconds, coarse (the exact creation time is sealed inside, ``OpenedRecord.created``)."""

    record_id: str  # 32 hex digits
    created_ms: int
    expires_ms: int
    recipient_key_id: str  # 16 hex digits
    device_public_key: bytes  # 32 bytes, Ed25519
    body_length: int
    version: int = FORMAT_VERSION
    sequence: int = 0  # version 2: the device's record counter (0 = none kept)

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
    def header_size(self) -> int:
        return HEADER_SIZES[self.version]

    @property
    def prefix_size(self) -> int:
        return self.header_size + SIGNATURE_SIZE

    @property
    def record_length(self) -> int:
        return self.prefix_size + self.body_length

    @property
    def file_name(self) -> str:
        return self.record_id + RECORD_SUFFIX

    @property
    def outer_domain(self) -> bytes:
        return OUTER_DOMAINS[self.version]

    @property
    def inner_domain(self) -> bytes:
        return INNER_DOMAINS[self.version]

    def is_expired(self, now: float) -> bool:
        return self.expires_ms <= _seconds_to_ms(now)

    def pack(self) -> bytes:
        packer = HEADER_STRUCTS[self.version]
        if self.version == 1:
            return packer.pack(MAGIC, 1, 0, bytes.fromhex(self.record_id), self.created_ms, self.expires_ms,
                               bytes.fromhex(self.recipient_key_id), self.device_public_key, self.body_length)
        return packer.pack(MAGIC, self.version, 0, bytes.fromhex(self.record_id), self.created_ms // 1000,
                           self.expires_ms // 1000, bytes.fromhex(self.recipient_key_id), self.device_public_key,
                           self.sequence, self.body_length)

    def summary(self) -> dict[str, Any]:
        """JSON-ready view for `snapseal ls --json` (plaintext only)."""
        return {
            "record_id": self.record_id,
            "version": self.version,
            "sequence": self.sequence,
            "created": self.created,
            "created_utc": iso_utc(self.created),
            "expires": self.expires,
            "expires_utc": iso_utc(self.expires),
            "recipient_key_id": self.recipient_key_id,
            "device_key_id": self.device_key_id,
            "size": self.record_length,
        }


def parse_header(data: bytes, source: str | os.PathLike | None = None) -> RecordHeader:
    """The plaintext header at the start of ``data``. Structure checks only, no crypto."""
    if len(data) < 10 or bytes(data[:len(MAGIC)]) != MAGIC:
        raise NotARecordError(source, "no snapseal header (bad magic or too short)")
    (version,) = _U16.unpack_from(data, 8)
    if version not in READ_VERSIONS:
        raise UnsupportedVersionError(source, f"format version {version}, this snapseal reads "
                                              f"{', '.join(map(str, READ_VERSIONS))}")
    size = HEADER_SIZES[version]
    if len(data) < size:
        raise CorruptRecordError(source, f"truncated: {len(data)} bytes, a version {version} header has {size}")
    fields = HEADER_STRUCTS[version].unpack_from(data, 0)
    flags = fields[2]
    if flags != 0:
        raise UnsupportedVersionError(source, f"unknown flags 0x{flags:04x}")
    if version == 1:
        _, _, _, record_id, created_ms, expires_ms, recipient_id, device_pk, body_length = fields
        sequence = 0
    else:
        _, _, _, record_id, created_s, expires_s, recipient_id, device_pk, sequence, body_length = fields
        if not (0 <= created_s <= MAX_TIME_S and 0 <= expires_s <= MAX_TIME_S):
            raise CorruptRecordError(source, f"header times out of range (created {created_s}, expires {expires_s})")
        created_ms, expires_ms = created_s * 1000, expires_s * 1000
    if created_ms < 0 or expires_ms < 0:
        raise CorruptRecordError(source, "header times are negative")
    if expires_ms < created_ms:
        raise CorruptRecordError(source, "header says the record expires before it was created")
    if body_length > MAX_RECORD_BYTES:
        raise CorruptRecordError(source, f"body length {body_length} is not plausible")
    return RecordHeader(record_id=record_id.hex(), created_ms=created_ms, expires_ms=expires_ms,
                        recipient_key_id=recipient_id.hex(), device_public_key=device_pk,
                        body_length=body_length, version=version, sequence=sequence)


# ---------------------------------------------------------------- what the pipeline hands in


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
class ImageInfo:
    """One sealed image as the metadata describes it (``png`` filled in by the reader)."""

    role: str
    width: int
    height: int
    channels: int  # 1 (gray) or 3 (BGR colour as PNG's RGB)
    frame_time: float
    box: tuple[float, float, float, float] | None  # where in the frame (model crops: the face box)
    score: float | None
    scale: float = 1.0  # colour images: the downscale applied (<= 1, never upscaled)
    padded: bool = False  # colour images: the box reached past the frame and was padded

    def as_json(self) -> dict[str, Any]:
        return {"role": self.role, "width": self.width, "height": self.height, "channels": self.channels,
                "frame_time": self.frame_time, "box": list(self.box) if self.box is not None else None,
                "score": self.score, "scale": self.scale, "padded": self.padded}


# ---------------------------------------------------------------- the metadata schema

# Strict JSON types: "int" is a JSON integer (not a bool, not 7.0), "number" an integer or a
# finite float, "text" a string of 1..MAX_TEXT printable characters.
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


_HEX16 = re.compile(r"^[0-9a-f]{16}$")


def _text_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a string"
    if not 1 <= len(value) <= MAX_TEXT:
        return f"must have 1 to {MAX_TEXT} characters"
    if printable(value) != value.replace("\\", "\\\\"):
        return "holds control or invisible characters"
    return None


def _time_problem(value: Any) -> str | None:
    if not _is_number(value):
        return "is not a number"
    if not 0 <= value <= MAX_TIME_S:
        return "is out of range"
    return None


def _box_problem(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) != 4 or not all(_is_number(v) for v in value):
        return "is not a list of 4 numbers"
    if any(abs(v) > MAX_COORD for v in value):
        return "is out of range"
    x1, y1, x2, y2 = value
    if not (x2 > x1 and y2 > y1):
        return "is not a box (x2 > x1 and y2 > y1)"
    return None


def _check(kind: str, value: Any) -> str | None:
    """Why ``value`` is not of ``kind``, or None."""
    if kind == "text":
        return _text_problem(value)
    if kind == "time":
        return _time_problem(value)
    if kind == "box":
        return _box_problem(value)
    if kind == "box?":
        return None if value is None else _box_problem(value)
    if kind == "score?":
        return None if value is None or _is_number(value) else "is not a number or null"
    if kind == "count":
        return None if _is_int(value) and value >= 0 and value < 2**53 else "is not an integer >= 0"
    if kind == "size":
        return None if _is_int(value) and 1 <= value <= 65535 else "is not an integer in [1, 65535]"
    if kind == "resolution":
        return None if _is_int(value) and 1 <= value <= 86400 else "is not an integer in [1, 86400]"
    if kind == "channels":
        return None if _is_int(value) and value in (1, 3) else "is not 1 or 3"
    if kind == "scale":
        return None if _is_number(value) and 0 < value <= 1 else "is not a number in (0, 1]"
    if kind == "bool":
        return None if isinstance(value, bool) else "is not true or false"
    if kind == "hex16":
        return None if isinstance(value, str) and _HEX16.match(value) else "is not 16 lowercase hex digits"
    if kind == "list":
        return None if isinstance(value, list) and 1 <= len(value) <= MAX_IMAGES else "is not a list of 1 to 64 images"
    if kind.startswith("="):
        return None if value == kind[1:] else f"is not {kind[1:]!r}"
    raise AssertionError(kind)


# name -> (kind, meaning): every key is required, no other key is allowed.
META_FIELDS_V2: dict[str, tuple[str, str]] = {
    "schema": ("=" + META_SCHEMA_V2, "the metadata schema and its version"),
    "camera_id": ("text", "the camera's configured name"),
    "device_key_id": ("hex16", "key id of the signing device key; equals the header's"),
    "sequence": ("count", "the header's sequence number, repeated under the inner signature"),
    "created_ms": ("count", "when the record was sealed, exact, milliseconds since the epoch (UTC)"),
    "header_resolution_s": ("resolution", "granularity of the plaintext created/expires, seconds"),
    "provisional": ("bool", "true while the track is still in view (best crop so far)"),
    "track_id": ("count", "the tracker's id of the person's track"),
    "frame_time": ("time", "capture time of the kept frame, seconds since the epoch"),
    "box": ("box", "face box in frame pixels [x1, y1, x2, y2]"),
    "score": ("score?", "quality score of the kept crop (null if not finite)"),
    "scorer": ("text", "name of the scorer that made the score"),
    "model_id": ("text", "id of the quality model"),
    "images": ("list", "one entry per PNG, in order; images[0] is the scored 64x64 crop"),
}
IMAGE_FIELDS_V2: dict[str, tuple[str, str]] = {
    "role": ("text", "best | extra | clip (model crops) | evidence | person (colour cuts of the frame)"),
    "width": ("size", "PNG width, pixels"),
    "height": ("size", "PNG height, pixels"),
    "channels": ("channels", "1 = gray, 3 = colour"),
    "frame_time": ("time", "capture time of the frame the image comes from"),
    "box": ("box?", "where in the frame, pixels [x1, y1, x2, y2] (colour images: the region cut)"),
    "score": ("score?", "the crop's quality score (colour images: null)"),
    "scale": ("scale", "downscale applied to a colour cut (1 = camera resolution)"),
    "padded": ("bool", "the region reached past the frame's edge and was padded"),
}
META_FIELDS_V1: dict[str, tuple[str, str]] = {
    "camera_id": ("text", ""), "track_id": ("count", ""), "frame_time": ("time", ""), "box": ("box", ""),
    "score": ("score?", ""), "scorer": ("text", ""), "model_id": ("text", ""), "device_key_id": ("hex16", ""),
    "images": ("list", ""),
}
IMAGE_FIELDS_V1: dict[str, tuple[str, str]] = {
    "role": ("text", ""), "frame_time": ("time", ""), "box": ("box?", ""), "score": ("score?", ""),
}


def _check_fields(what: str, document: Any, fields: dict[str, tuple[str, str]]) -> None:
    if not isinstance(document, dict):
        raise ValueError(f"{what} is not a JSON object")
    missing = [name for name in fields if name not in document]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)}")
    unknown = sorted(name for name in document if name not in fields)
    if unknown:
        raise ValueError(f"{what} has unknown key {printable(unknown[0])!s}")
    for name, (kind, _) in fields.items():
        problem = _check(kind, document[name])
        if problem:
            raise ValueError(f"{what}.{name} {problem}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {printable(key)}")
        document[key] = value
    return document


def loads_strict(blob: bytes) -> Any:
    """Standard JSON only: UTF-8, no NaN/Infinity, no duplicate keys."""
    return json.loads(blob.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)


def dumps_canonical(document: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, NaN refused: what the sealer writes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class RecordMeta:
    """The signed metadata of one record, checked."""

    camera_id: str
    meta: CropMeta
    images: tuple[ImageInfo, ...]
    created_ms: int | None  # v2: exact; v1: the header's
    sequence: int
    provisional: bool
    header_resolution_s: int | None


def build_metadata(camera_id: str, meta: CropMeta, device_key_id: str, images: list[ImageInfo], sequence: int,
                   created_ms: int, header_resolution_s: int, provisional: bool) -> bytes:
    """The version-2 metadata JSON (canonical bytes), checked against the schema before sealing:
    a sealer can't write what a reader would refuse."""
    document = {
        "schema": META_SCHEMA_V2,
        "camera_id": str(camera_id),
        "device_key_id": device_key_id,
        "sequence": int(sequence),
        "created_ms": int(created_ms),
        "header_resolution_s": int(header_resolution_s),
        "provisional": bool(provisional),
        "track_id": meta.track_id,
        "frame_time": meta.frame_time,
        "box": list(meta.box),
        "score": meta.score,
        "scorer": meta.scorer,
        "model_id": meta.model_id,
        "images": [image.as_json() for image in images],
    }
    try:
        _check_meta_v2(document)
    except ValueError as error:
        raise ValueError(f"cannot seal: {error}") from None
    return dumps_canonical(document)


def _check_meta_v2(document: Any) -> None:
    _check_fields("metadata", document, META_FIELDS_V2)
    images = document["images"]
    for index, image in enumerate(images):
        _check_fields(f"metadata.images[{index}]", image, IMAGE_FIELDS_V2)
        role = image["role"]
        if role not in IMAGE_ROLES:
            raise ValueError(f"metadata.images[{index}].role {printable(role)!r} is not one of {', '.join(IMAGE_ROLES)}")
        if (index == 0) != (role == "best"):
            raise ValueError(f"metadata.images[{index}].role: the first image and only it is 'best'")
        if role in COLOUR_ROLES:
            if image["channels"] != 3 or image["box"] is None:
                raise ValueError(f"metadata.images[{index}]: a {role} image is colour and says where it is in the frame")
        elif image["scale"] != 1 or image["padded"]:
            raise ValueError(f"metadata.images[{index}]: a model crop has scale 1 and no padding")
    for role in COLOUR_ROLES:
        if sum(1 for image in images if image["role"] == role) > 1:
            raise ValueError(f"metadata.images: more than one {role} image")


def _check_meta_v1(document: Any) -> None:
    _check_fields("metadata", document, META_FIELDS_V1)
    for index, image in enumerate(document["images"]):
        _check_fields(f"metadata.images[{index}]", image, IMAGE_FIELDS_V1)
        role = image["role"]
        if role not in IMAGE_ROLES_V1:
            raise ValueError(f"metadata.images[{index}].role {printable(role)!r} is not one of {', '.join(IMAGE_ROLES_V1)}")
        if (index == 0) != (role == "best"):
            raise ValueError(f"metadata.images[{index}].role: the first image and only it is 'best'")


def parse_metadata(blob: bytes, header: RecordHeader, image_shapes: list[tuple[int, int, int]],
                   source: str | os.PathLike | None) -> RecordMeta:
    """Check the signed metadata of ``header``'s version strictly; ``image_shapes`` are the decoded
    PNGs' (height, width, channels), which the metadata must describe exactly."""
    try:
        document = loads_strict(blob)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CorruptRecordError(source, f"signed metadata is not standard JSON ({error})") from None
    try:
        (_check_meta_v1 if header.version == 1 else _check_meta_v2)(document)
        if len(document["images"]) != len(image_shapes):
            raise ValueError(f"metadata.images describes {len(document['images'])} images, the record holds "
                             f"{len(image_shapes)}")
    except ValueError as error:
        raise CorruptRecordError(source, f"signed {error}") from None
    if document["device_key_id"] != header.device_key_id:
        raise CorruptRecordError(source, f"signed metadata names device key {document['device_key_id']}, the header "
                                         f"{header.device_key_id}")
    images = []
    for index, (description, (height, width, channels)) in enumerate(zip(document["images"], image_shapes)):
        if header.version == 2:
            if (description["height"], description["width"], description["channels"]) != (height, width, channels):
                raise CorruptRecordError(source, f"signed metadata.images[{index}] says {description['width']}x"
                                                 f"{description['height']}x{description['channels']}, the PNG is "
                                                 f"{width}x{height}x{channels}")
            extra = {"scale": float(description["scale"]), "padded": description["padded"]}
        else:
            extra = {}
        images.append(ImageInfo(role=description["role"], width=width, height=height, channels=channels,
                                frame_time=float(description["frame_time"]), box=_as_box(description["box"]),
                                score=_as_score(description["score"]), **extra))
    meta = CropMeta(track_id=document["track_id"], frame_time=document["frame_time"], box=document["box"],
                    score=document["score"], scorer=document["scorer"], model_id=document["model_id"])
    if header.version == 1:
        return RecordMeta(document["camera_id"], meta, tuple(images), header.created_ms, 0, False, None)
    created_ms, resolution = document["created_ms"], document["header_resolution_s"]
    if document["sequence"] != header.sequence:
        raise CorruptRecordError(source, f"signed sequence {document['sequence']} differs from the header's "
                                         f"{header.sequence}")
    if not 0 <= created_ms <= MAX_TIME_S * 1000:
        raise CorruptRecordError(source, "signed metadata.created_ms is out of range")
    if coarse_seconds(created_ms / 1000.0, resolution) * 1000 != header.created_ms:
        raise CorruptRecordError(source, f"the header's created is not the sealed creation time floored to "
                                         f"{resolution} s")
    return RecordMeta(document["camera_id"], meta, tuple(images), created_ms, document["sequence"],
                      document["provisional"], resolution)


# ---------------------------------------------------------------- payload and images


def pack_payload(meta_json: bytes, pngs: list[bytes]) -> bytes:
    if len(meta_json) > MAX_META_BYTES:
        raise ValueError(f"metadata of {len(meta_json)} bytes is over the limit of {MAX_META_BYTES}")
    if not 1 <= len(pngs) <= MAX_IMAGES:
        raise ValueError(f"a record holds 1 to {MAX_IMAGES} images, not {len(pngs)}")
    return b"".join([_U32.pack(len(meta_json)), meta_json, _U16.pack(len(pngs))]
                    + [_U32.pack(len(png)) + png for png in pngs])


def parse_payload(payload: bytes, source: str | os.PathLike | None) -> tuple[bytes, list[bytes]]:
    """(metadata JSON bytes, PNG blobs) of a signed payload; its structure only."""
    try:
        (meta_length,) = _U32.unpack_from(payload, 0)
        offset = _U32.size
        if meta_length > MAX_META_BYTES or offset + meta_length > len(payload):
            raise ValueError("metadata runs past the end")
        meta = bytes(payload[offset:offset + meta_length])
        offset += meta_length
        (count,) = _U16.unpack_from(payload, offset)
        offset += _U16.size
        if not 1 <= count <= MAX_IMAGES:
            raise ValueError(f"{count} images (1 to {MAX_IMAGES} allowed)")
        images = []
        for _ in range(count):
            (length,) = _U32.unpack_from(payload, offset)
            offset += _U32.size
            if offset + length > len(payload):
                raise ValueError("image runs past the end")
            images.append(bytes(payload[offset:offset + length]))
            offset += length
    except (struct.error, ValueError) as error:
        raise CorruptRecordError(source, f"signed payload does not parse ({error})") from None
    if offset != len(payload):
        raise CorruptRecordError(source, f"signed payload has {len(payload) - offset} trailing bytes")
    return meta, images


def decode_png(png: bytes, source: str | os.PathLike | None) -> np.ndarray:
    """A PNG (8-bit gray or colour) -> its pixels; anything else (a BMP, a 16-bit PNG) is corrupt."""
    if not png.startswith(PNG_SIGNATURE):
        raise CorruptRecordError(source, "a signed image is not a PNG")
    pixels = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise CorruptRecordError(source, "a signed image does not decode as PNG")
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise CorruptRecordError(source, "a signed image is not an 8-bit gray or colour PNG")
    return pixels


def image_shape(pixels: np.ndarray) -> tuple[int, int, int]:
    return int(pixels.shape[0]), int(pixels.shape[1]), 1 if pixels.ndim == 2 else int(pixels.shape[2])


def encode_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG in memory (cv2.imencode): a crop never touches disk unencrypted."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"a crop is uint8, got {pixels.dtype}")
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (1, 3))) or pixels.size == 0:
        raise ValueError(f"a crop is H x W (gray) or H x W x 1/3, got shape {pixels.shape}")
    if max(pixels.shape[:2]) > 65535:
        raise ValueError(f"an image side is at most 65535 pixels, got shape {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError("cv2.imencode could not encode the crop as PNG")
    return encoded.tobytes()


def opened_summary(header: RecordHeader, meta: RecordMeta, device_trusted: bool,
                   names: list[str] | None = None) -> dict[str, Any]:
    """What `snapseal open` writes to <record-id>.json (keys documented in docs/FORMAT.md)."""
    created = (meta.created_ms if meta.created_ms is not None else header.created_ms) / 1000.0
    images = []
    for index, image in enumerate(meta.images):
        entry = image.as_json()
        if names is not None:
            entry["file"] = names[index]
        images.append(entry)
    return {
        "record_id": header.record_id,
        "format_version": header.version,
        "sequence": header.sequence,
        "provisional": meta.provisional,
        "camera_id": meta.camera_id,
        "track_id": meta.meta.track_id,
        "frame_time": meta.meta.frame_time,
        "frame_time_utc": iso_utc(meta.meta.frame_time),
        "box": list(meta.meta.box),
        "score": meta.meta.score,
        "scorer": meta.meta.scorer,
        "model_id": meta.meta.model_id,
        "device_key_id": header.device_key_id,
        "device_trusted": device_trusted,
        "recipient_key_id": header.recipient_key_id,
        "created": created,
        "created_utc": iso_utc(created),
        "expires": header.expires,
        "expires_utc": iso_utc(header.expires),
        "images": images,
    }


ImageNamer = Callable[[str, int, ImageInfo], str]


def image_file_name(record_id: str, index: int, image: ImageInfo) -> str:
    """The file `snapseal open` writes for image ``index``: from the hex record id and a role of
    the closed set only (never from other record text)."""
    if not re.fullmatch(r"[0-9a-f]{32}", record_id) or image.role not in IMAGE_ROLES:
        raise ValueError("not a checked record id / role")
    if index == 0:
        return f"{record_id}.png"
    return f"{record_id}-{image.role}-{index:02d}.png"
