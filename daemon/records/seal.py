"""Sealing: one record from the kept crop and its metadata, signed by the camera's device key
and sealed to the investigator's public key (layout in daemon/records/layout.py).

API (for the pipeline)::

    sealer = RecordSealer(recipient_pub, device_key, camera_id="cam-01", retention=timedelta(days=10))
    record_bytes = sealer.seal(crop_u8, CropMeta(track_id=7, frame_time=t, box=(x1, y1, x2, y2),
                                                 score=s, scorer="default", model_id="vae-..."),
                               extras=[SealedImage(pixels, frame_time, role="extra"|"clip", box, score)])
    CropMeta.from_scored(scored_crop, track_id, model_id) / SealedImage.from_scored(scored_crop, role)

The camera holds only public keys and its own signing key: nothing here can open a record.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Sequence

import nacl.public
import numpy as np

from snapseal.daemon.keys import DeviceKeyPair, InvestigatorPublicKey
from snapseal.daemon.records.layout import (
    INNER_DOMAIN,
    OUTER_DOMAIN,
    PREFIX_SIZE,
    SEALED_BOX_OVERHEAD,
    CropMeta,
    RecordHeader,
    _U16,
    _U32,
    _as_box,
    _as_score,
    _seconds_to_ms,
    encode_png,
)


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




__all__ = ["CropMeta", "SealedImage", "RecordSealer", "seal_record", "encode_png"]
