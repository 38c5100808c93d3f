"""Sealing: one record from the kept crop, its colour evidence and its metadata, signed by the
camera's device key and sealed to the investigator's public key (layout: docs/FORMAT.md and
daemon/records/layout.py).

API (for the pipeline)::

    sealer = RecordSealer(recipient, device_key, camera_id="cam-01", retention=timedelta(days=10))
    record_bytes = sealer.seal(crop_u8, CropMeta(track_id=7, frame_time=t, box=(x1, y1, x2, y2),
                                                 score=s, scorer="default", model_id="vae-..."),
                               extras=[SealedImage(pixels, frame_time, role="extra"|"clip", box, score),
                                       SealedImage.from_evidence(evidence_image, frame_time)],
                               record_id=None, sequence=None, provisional=False)
    CropMeta.from_scored(scored_crop, track_id, model_id) / SealedImage.from_scored(scored_crop, role)

``recipient`` is an ``InvestigatorPublicKey`` or any ``RecipientSource`` (recipient.py): it is
asked for the key of each record's creation time. ``sequence`` comes from ``sequencer()`` when
not given (the daemon passes the store's per-device counter; without one it is 0, "none").
The plaintext header's times are floored to ``header_resolution_s`` (an hour by default): the
exact creation time is sealed inside. The camera holds only public keys and its own signing
key: nothing here can open a record.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Sequence

import nacl.public
import numpy as np

from snapseal.daemon.keys import DeviceKeyPair, InvestigatorPublicKey
from snapseal.daemon.records.layout import (
    COLOUR_ROLES,
    DEFAULT_HEADER_RESOLUTION_S,
    FORMAT_VERSION,
    SEALED_BOX_OVERHEAD,
    CropMeta,
    ImageInfo,
    RecordHeader,
    _as_box,
    _as_score,
    _seconds_to_ms,
    build_metadata,
    coarse_seconds,
    dumps_canonical,
    encode_png,
    image_shape,
    pack_payload,
)
from snapseal.daemon.records.recipient import RecipientSource, as_recipient_source


@dataclass(frozen=True)
class SealedImage:
    """An image sealed beside the kept model crop: another top-k crop ("extra"), a clip frame
    ("clip"), or a colour cut of the frame ("evidence": the face with context; "person")."""

    pixels: np.ndarray
    frame_time: float
    role: str = "extra"
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    scale: float = 1.0
    padded: bool = False

    def __post_init__(self) -> None:
        if self.role not in ("extra", "clip", *COLOUR_ROLES):
            raise ValueError(f"an extra image's role is 'extra', 'clip', 'evidence' or 'person', not {self.role!r}")
        object.__setattr__(self, "frame_time", float(self.frame_time))
        object.__setattr__(self, "box", _as_box(self.box))
        object.__setattr__(self, "score", _as_score(self.score))
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "padded", bool(self.padded))

    @classmethod
    def from_scored(cls, scored: Any, role: str = "extra") -> SealedImage:
        return cls(pixels=scored.crop.pixels, frame_time=scored.crop.timestamp, role=role,
                   box=scored.crop.detection.box, score=scored.score)

    @classmethod
    def from_evidence(cls, evidence: Any, frame_time: float) -> SealedImage:
        """From a ``types.EvidenceImage`` (colour BGR, its role, its region of the frame)."""
        return cls(pixels=evidence.pixels, frame_time=frame_time, role=evidence.role, box=tuple(evidence.frame_box),
                   score=None, scale=evidence.scale, padded=evidence.padded)


def _image_info(role: str, pixels: np.ndarray, frame_time: float, box: Any, score: Any, scale: float = 1.0,
                padded: bool = False) -> ImageInfo:
    height, width, channels = image_shape(np.asarray(pixels))
    return ImageInfo(role=role, width=width, height=height, channels=channels, frame_time=float(frame_time),
                     box=_as_box(box), score=_as_score(score), scale=float(scale), padded=bool(padded))


def seal_record(crop: np.ndarray, meta: CropMeta, camera_id: str, recipient: InvestigatorPublicKey,
                device: DeviceKeyPair, created: float, expires: float, extras: Sequence[SealedImage] = (),
                record_id: str | None = None, sequence: int = 0, header_resolution_s: int = DEFAULT_HEADER_RESOLUTION_S,
                provisional: bool = False, version: int = FORMAT_VERSION) -> bytes:
    """Build one record (docs/FORMAT.md). ``expires`` is exact here; the header holds it coarse.
    ``version=1`` writes the old layout (for tests and vectors only)."""
    images = [_image_info("best", crop, meta.frame_time, meta.box, meta.score)]
    images += [_image_info(extra.role, extra.pixels, extra.frame_time, extra.box, extra.score, extra.scale, extra.padded)
               for extra in extras]
    pngs = [encode_png(crop)] + [encode_png(extra.pixels) for extra in extras]
    record_id = record_id or os.urandom(16).hex()
    if version == 1:
        meta_json = dumps_canonical({
            "camera_id": str(camera_id), "track_id": meta.track_id, "frame_time": meta.frame_time,
            "box": list(meta.box), "score": meta.score, "scorer": meta.scorer, "model_id": meta.model_id,
            "device_key_id": device.key_id,
            "images": [{"role": i.role, "frame_time": i.frame_time, "box": list(i.box) if i.box else None,
                        "score": i.score} for i in images]})
        created_ms, expires_ms = _seconds_to_ms(created), _seconds_to_ms(expires)
    else:
        resolution = int(header_resolution_s)
        created_ms = _seconds_to_ms(created)
        meta_json = build_metadata(camera_id, meta, device.key_id, images, sequence=sequence, created_ms=created_ms,
                                   header_resolution_s=resolution, provisional=provisional)
        created_ms = coarse_seconds(created_ms / 1000.0, resolution) * 1000
        expires_ms = max(coarse_seconds(expires, resolution) * 1000, created_ms)
    payload = pack_payload(meta_json, pngs)
    header_fields = RecordHeader(record_id=record_id, created_ms=created_ms, expires_ms=expires_ms,
                                 recipient_key_id=recipient.key_id, device_public_key=device.public.public_bytes,
                                 body_length=0, version=version, sequence=int(sequence) if version == 2 else 0)
    header_fields = RecordHeader(**{**header_fields.__dict__,
                                    "body_length": SEALED_BOX_OVERHEAD + header_fields.prefix_size + len(payload)})
    header = header_fields.pack()
    inner_signature = device.sign(header_fields.inner_domain + header + payload)
    body = nacl.public.SealedBox(recipient.key).encrypt(inner_signature + header + payload)
    assert len(body) == header_fields.body_length
    outer_signature = device.sign(header_fields.outer_domain + header + body)
    return header + outer_signature + body


@dataclass
class RecordSealer:
    """Seals crops for one camera: ``RecordSealer(recipient, device_key, camera_id, retention)``.

    ``retention`` is a timedelta or seconds; a record expires ``retention`` after it is sealed
    (the plaintext expiry floored to ``header_resolution_s``). ``clock`` (seconds since the
    epoch) is injectable for tests. Holds only public/signing keys.
    """

    recipient_pub: InvestigatorPublicKey | RecipientSource
    device_key: DeviceKeyPair
    camera_id: str
    retention: timedelta | float
    clock: Callable[[], float] = field(default=time.time, repr=False)
    header_resolution_s: int = DEFAULT_HEADER_RESOLUTION_S
    sequencer: Callable[[], int] | None = field(default=None, repr=False)
    retention_seconds: float = field(init=False)
    recipients: RecipientSource = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.recipients = as_recipient_source(self.recipient_pub)
        if not isinstance(self.device_key, DeviceKeyPair):
            raise TypeError("device_key is a DeviceKeyPair (keys.load_device_signing)")
        seconds = self.retention.total_seconds() if isinstance(self.retention, timedelta) else float(self.retention)
        if not seconds > 0:
            raise ValueError(f"retention must be positive, got {self.retention!r}")
        if not (isinstance(self.header_resolution_s, int) and 1 <= self.header_resolution_s <= 86400):
            raise ValueError(f"header_resolution_s is a whole number of seconds in [1, 86400], got "
                             f"{self.header_resolution_s!r}")
        self.retention_seconds = seconds

    def seal(self, crop: np.ndarray, meta: CropMeta, extras: Sequence[SealedImage] = (), now: float | None = None,
             record_id: str | None = None, sequence: int | None = None, provisional: bool = False) -> bytes:
        created = self.clock() if now is None else float(now)
        if sequence is None:
            sequence = self.sequencer() if self.sequencer is not None else 0
        recipient = self.recipients.recipient_for(created)
        return seal_record(crop, meta, self.camera_id, recipient, self.device_key, created=created,
                           expires=created + self.retention_seconds, extras=extras, record_id=record_id,
                           sequence=sequence, header_resolution_s=self.header_resolution_s, provisional=provisional)


__all__ = ["CropMeta", "SealedImage", "RecordSealer", "seal_record", "encode_png"]
