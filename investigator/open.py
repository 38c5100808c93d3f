"""Opening a record with the investigator's private key (never on a camera).

``open_record(bytes, key, trusted_device_keys=None) -> OpenedRecord``: everything
daemon/records/verify.py checks, then decrypts and checks the inner signature over the
plaintext content (so the proof survives re-encryption for another key), that the signed header
copy equals the plaintext header, that every image is a PNG the metadata describes exactly, and
the metadata against its schema (daemon/records/layout.py, docs/FORMAT.md). Any problem is a
``RecordError`` subclass with a one-line reason, before anything is returned.

``key`` is an ``InvestigatorKeyPair`` or any ``KeySource``: ``key_for(header)`` returns the pair
that opens a record (or raises a ``SnapsealError`` with a one-line reason: it becomes a
``KeyRefusedError`` for that record). A key source may also have ``admit(opened)`` (called with
the fully checked record before it is returned; raise to refuse) and ``on_opened(opened)``
(called by `snapseal open` after every check and BEFORE any file of the record is written: the
opening log; raise a SnapsealError to refuse, then nothing is written for that record).
``OpenedRecord.header.created_ms`` is the exact creation time sealed inside (the plaintext
header, ``plaintext_header``, holds it floored to an hour).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, runtime_checkable

import nacl.exceptions
import nacl.public
import nacl.signing
import numpy as np

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keys import DevicePublicKey, InvestigatorKeyPair
from snapseal.daemon.records.layout import (
    SIGNATURE_SIZE,
    CorruptRecordError,
    CropMeta,
    ImageInfo,
    KeyRefusedError,
    RecordError,
    RecordHeader,
    RecordMeta,
    TamperedRecordError,
    WrongRecipientError,
    decode_png,
    image_shape,
    opened_summary,
    parse_metadata,
    parse_payload,
)
from snapseal.daemon.records.verify import verify_record


@runtime_checkable
class KeySource(Protocol):
    def key_for(self, header: RecordHeader) -> InvestigatorKeyPair:
        """The key pair that opens the record with this plaintext header; raise a SnapsealError
        (one line) to refuse it."""
        ...


@dataclass(frozen=True)
class SingleKey:
    """Today's setup: one investigator private key opens every record sealed to it."""

    pair: InvestigatorKeyPair

    def key_for(self, header: RecordHeader) -> InvestigatorKeyPair:
        if header.recipient_key_id != self.pair.key_id:
            raise WrongRecipientError(None, f"sealed to key {header.recipient_key_id}, not to {self.pair.key_id}")
        return self.pair


def as_key_source(key: InvestigatorKeyPair | KeySource) -> KeySource:
    if isinstance(key, InvestigatorKeyPair):
        return SingleKey(key)
    if isinstance(key, KeySource):
        return key
    raise TypeError("key is an InvestigatorKeyPair or a KeySource with key_for(header)")


@dataclass(frozen=True)
class OpenedImage:
    role: str
    frame_time: float
    box: tuple[float, float, float, float] | None
    score: float | None
    png: bytes  # exactly the bytes the camera encoded
    pixels: np.ndarray
    info: ImageInfo | None = None  # size, channels, scale, padding as the metadata says

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True)
class OpenedRecord:
    """A record after ``open_record``: every signature checked, the content decrypted."""

    header: RecordHeader  # after opening: created_ms is the EXACT sealed creation time
    camera_id: str
    meta: CropMeta
    images: tuple[OpenedImage, ...]  # images[0] is the kept (scored) crop
    device_trusted: bool  # True when checked against a trust set
    record_meta: RecordMeta | None = None
    plaintext_header: RecordHeader | None = None  # the header as stored (coarse times)

    @property
    def crop(self) -> np.ndarray:
        return self.images[0].pixels

    @property
    def crop_png(self) -> bytes:
        return self.images[0].png

    @property
    def extras(self) -> tuple[OpenedImage, ...]:
        return self.images[1:]

    @property
    def created(self) -> float:
        """Exact creation time, seconds (sealed inside; the plaintext header's is coarse)."""
        return self.header.created

    @property
    def created_ms(self) -> int:
        return self.header.created_ms

    @property
    def provisional(self) -> bool:
        return bool(self.record_meta and self.record_meta.provisional)

    @property
    def evidence(self) -> tuple[OpenedImage, ...]:
        return tuple(image for image in self.images if image.role in ("evidence", "person"))

    def summary(self, names: list[str] | None = None) -> dict[str, Any]:
        """What `snapseal open` writes to <record-id>.json."""
        assert self.record_meta is not None
        return opened_summary(self.plaintext_header or self.header, self.record_meta, self.device_trusted, names)


def _with_source(error: RecordError, source: str | os.PathLike | None) -> RecordError:
    return type(error)(source, error.detail) if source is not None else error


def open_record(data: bytes, investigator_key: InvestigatorKeyPair | KeySource,
                trusted_device_keys: Iterable[DevicePublicKey | bytes] | None = None,
                source: str | os.PathLike | None = None) -> OpenedRecord:
    """Verify, decrypt and check everything; raise a RecordError subclass on any problem."""
    data = bytes(data)
    keys = as_key_source(investigator_key)
    header = verify_record(data, trusted_device_keys, source)
    try:
        pair = keys.key_for(header)
    except RecordError as error:
        raise _with_source(error, source) from None
    except SnapsealError as error:
        raise KeyRefusedError(source, str(error)) from None
    if header.recipient_key_id != pair.key_id:
        raise WrongRecipientError(source, f"sealed to key {header.recipient_key_id}, not to {pair.key_id}")
    size, prefix = header.header_size, header.prefix_size
    try:
        inner = nacl.public.SealedBox(pair.private).decrypt(data[prefix:])
    except nacl.exceptions.CryptoError:
        raise TamperedRecordError(source, "the sealed box does not open with this key") from None
    inner_signature, inner_header, payload = inner[:SIGNATURE_SIZE], inner[SIGNATURE_SIZE:prefix], inner[prefix:]
    if inner_header != data[:size]:
        raise TamperedRecordError(source, "the plaintext header differs from the signed copy inside")
    try:
        nacl.signing.VerifyKey(header.device_public_key).verify(header.inner_domain + inner_header + payload,
                                                                 inner_signature)
    except (nacl.exceptions.CryptoError, ValueError):
        raise TamperedRecordError(source, "the device signature over the content does not match") from None
    meta_json, pngs = parse_payload(payload, source)
    pixels = [decode_png(png, source) for png in pngs]
    record_meta = parse_metadata(meta_json, header, [image_shape(p) for p in pixels], source)
    images = tuple(OpenedImage(role=info.role, frame_time=info.frame_time, box=info.box, score=info.score, png=png,
                               pixels=image, info=info)
                   for info, png, image in zip(record_meta.images, pngs, pixels))
    exact = dataclasses.replace(header, created_ms=record_meta.created_ms if record_meta.created_ms is not None
                                else header.created_ms)
    opened = OpenedRecord(header=exact, camera_id=record_meta.camera_id, meta=record_meta.meta, images=images,
                          device_trusted=trusted_device_keys is not None, record_meta=record_meta,
                          plaintext_header=header)
    admit = getattr(keys, "admit", None)
    if admit is not None:
        try:
            admit(opened)
        except RecordError as error:
            raise _with_source(error, source) from None
        except SnapsealError as error:
            raise KeyRefusedError(source, str(error)) from None
    return opened


__all__ = ["OpenedRecord", "OpenedImage", "open_record", "KeySource", "SingleKey", "as_key_source",
           "CorruptRecordError"]
