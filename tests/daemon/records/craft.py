"""Correctly signed and sealed records around arbitrary content: what a buggy or hostile device
(one that holds a device key) could write. Used by the strictness tests, the vectors and the fuzz test."""

from __future__ import annotations

import json

import nacl.public

from snapseal.daemon.keys import DeviceKeyPair, InvestigatorPublicKey
from snapseal.daemon.records import layout

NOW = 1_800_000_000.0  # a whole hour


def good_meta(device: DeviceKeyPair, images: list[dict], sequence: int = 1, created_ms: int = int(NOW * 1000) + 1234,
              **changes) -> dict:
    meta = {
        "schema": layout.META_SCHEMA_V2, "camera_id": "cam-01", "device_key_id": device.key_id, "sequence": sequence,
        "created_ms": created_ms, "header_resolution_s": 3600, "provisional": False, "track_id": 7,
        "frame_time": NOW - 3.25, "box": [10.5, 20.0, 74.5, 84.0], "score": -1234.5, "scorer": "default",
        "model_id": "vae-test-1", "images": images,
    }
    meta.update(changes)
    return meta


def image_entry(width: int, height: int, channels: int = 1, role: str = "best", **changes) -> dict:
    entry = {"role": role, "width": width, "height": height, "channels": channels, "frame_time": NOW - 3.25,
             "box": [10.5, 20.0, 74.5, 84.0], "score": -1234.5 if role == "best" else None, "scale": 1.0,
             "padded": False}
    entry.update(changes)
    return entry


def craft(device: DeviceKeyPair, recipient: InvestigatorPublicKey, meta_json: bytes, images: list[bytes],
          record_id: str = "ab" * 16, created_s: int = int(NOW), expires_s: int = int(NOW) + 864000,
          sequence: int = 1, version: int = 2) -> bytes:
    payload = layout.pack_payload(meta_json, images) if len(meta_json) <= layout.MAX_META_BYTES else b""
    header_fields = layout.RecordHeader(record_id=record_id, created_ms=created_s * 1000, expires_ms=expires_s * 1000,
                                        recipient_key_id=recipient.key_id, device_public_key=device.public.public_bytes,
                                        body_length=0, version=version, sequence=sequence if version == 2 else 0)
    body_length = layout.SEALED_BOX_OVERHEAD + header_fields.prefix_size + len(payload)
    header = layout.RecordHeader(**{**header_fields.__dict__, "body_length": body_length}).pack()
    inner = device.sign(layout.INNER_DOMAINS[version] + header + payload) + header + payload
    body = nacl.public.SealedBox(recipient.key).encrypt(inner)
    return header + device.sign(layout.OUTER_DOMAINS[version] + header + body) + body


def craft_meta(device: DeviceKeyPair, recipient: InvestigatorPublicKey, meta: dict, images: list[bytes], **kwargs) -> bytes:
    return craft(device, recipient, json.dumps(meta, sort_keys=True).encode("utf-8"), images, **kwargs)
