"""Opening a record with the investigator's private key (never on a camera).

``open_record(bytes, investigator_key, trusted_device_keys=None) -> OpenedRecord``: everything
``daemon/records/verify.py`` checks, then decrypts and checks the inner signature over the
plaintext content (so the proof survives re-encryption for another key), that the signed header
copy equals the plaintext header, and that the PNGs decode. Sealed boxes hide their sender; the
signatures are what say which camera made a record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import nacl.exceptions
import nacl.public
import nacl.signing
import numpy as np

from snapseal.daemon.keys import DevicePublicKey, InvestigatorKeyPair
from snapseal.daemon.records.layout import (
    HEADER_SIZE,
    INNER_DOMAIN,
    PREFIX_SIZE,
    SIGNATURE_SIZE,
    CorruptRecordError,
    CropMeta,
    RecordHeader,
    TamperedRecordError,
    WrongRecipientError,
    _as_box,
    _as_score,
    decode_png,
    iso_utc,
    parse_payload,
)
from snapseal.daemon.records.verify import verify_record


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
    meta, pngs = parse_payload(payload, source)
    try:
        if meta.get("device_key_id") != header.device_key_id:
            raise ValueError("device key id differs from the header's")
        descriptions = meta["images"]
        if not isinstance(descriptions, list) or len(descriptions) != len(pngs):
            raise ValueError("image list does not match the images")
        images = tuple(
            OpenedImage(role=str(description["role"]), frame_time=float(description["frame_time"]),
                        box=_as_box(description.get("box")), score=_as_score(description.get("score")),
                        png=png, pixels=decode_png(png, source))
            for description, png in zip(descriptions, pngs))
        crop_meta = CropMeta(track_id=meta["track_id"], frame_time=meta["frame_time"], box=meta["box"],
                             score=meta.get("score"), scorer=meta["scorer"], model_id=meta["model_id"])
        camera_id = str(meta["camera_id"])
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptRecordError(source, f"signed metadata is incomplete ({error})") from None
    return OpenedRecord(header=header, camera_id=camera_id, meta=crop_meta, images=images,
                        device_trusted=trusted_device_keys is not None)



__all__ = ["OpenedRecord", "OpenedImage", "open_record"]
