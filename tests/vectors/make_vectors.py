"""Write the known-answer vectors of docs/FORMAT.md into this directory (run once; the files are
committed and tests/vectors/test_vectors.py checks them without re-making them):

    .venv/work/bin/python tests/vectors/make_vectors.py

Keys come from fixed seeds (below), so anyone can re-derive them; records are sealed boxes
(random ephemeral keys), so their bytes are what is committed, not re-derivable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

import nacl.public
import nacl.signing
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "daemon" / "records"))

from craft import craft, craft_meta, good_meta, image_entry  # noqa: E402

from snapseal.daemon.keys import DeviceKeyPair, InvestigatorKeyPair, key_id_of  # noqa: E402
from snapseal.daemon.records import layout  # noqa: E402
from snapseal.daemon.records.seal import CropMeta, SealedImage, seal_record  # noqa: E402
from snapseal.daemon.records.verify import verify_record  # noqa: E402
from snapseal.investigator.open import open_record  # noqa: E402

INVESTIGATOR_SEED = hashlib.sha256(b"snapseal test vector investigator key").digest()
DEVICE_SEED = hashlib.sha256(b"snapseal test vector device key").digest()
OTHER_DEVICE_SEED = hashlib.sha256(b"snapseal test vector other device key").digest()
CREATED = 1_800_000_000.25 + 1234.5  # 2027-01-15T08:20:34.750Z
EXPIRES = CREATED + 10 * 86400


def key_file(kind: str, raw: bytes, public: bytes) -> bytes:
    document = {"snapseal_key": kind, "version": 1, "key_id": key_id_of(public),
                "key": base64.b64encode(raw).decode("ascii"), "created": "2027-01-15T08:00:00Z"}
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")


def pixels(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    base = 128 + 60 * np.sin(xx / (5.0 + seed)) * np.cos(yy / 7.0)
    if len(shape) == 3:
        base = np.stack([base, base[::-1], 255 - base], axis=2)
    return np.clip(base + np.random.default_rng(seed).normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def main() -> None:
    investigator = InvestigatorKeyPair(nacl.public.PrivateKey(INVESTIGATOR_SEED))
    device = DeviceKeyPair(nacl.signing.SigningKey(DEVICE_SEED))
    other = DeviceKeyPair(nacl.signing.SigningKey(OTHER_DEVICE_SEED))
    keys_dir = HERE / "keys"
    keys_dir.mkdir(exist_ok=True)
    files = {
        "investigator.key": key_file("investigator-private", investigator.private_bytes, investigator.public.public_bytes),
        "investigator.pub": key_file("investigator-public", investigator.public.public_bytes, investigator.public.public_bytes),
        "device.key": key_file("device-private", device.seed_bytes, device.public.public_bytes),
        "device.pub": key_file("device-public", device.public.public_bytes, device.public.public_bytes),
    }
    for name, data in files.items():
        (keys_dir / name).write_bytes(data)
        (keys_dir / name).chmod(0o600 if name.endswith(".key") else 0o644)
    trust = {"snapseal_trust": 1, "devices": [{"key_id": device.key_id, "label": "vector camera",
                                               "key": base64.b64encode(device.public.public_bytes).decode()}]}
    (keys_dir / "trusted-devices.json").write_text(json.dumps(trust, indent=1) + "\n")

    records_dir, opened_dir, bad_dir = HERE / "records", HERE / "opened", HERE / "malformed"
    for directory in (records_dir, opened_dir, bad_dir):
        directory.mkdir(exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
    meta = CropMeta(track_id=7, frame_time=CREATED - 2.5, box=(120.5, 80.0, 184.5, 144.0), score=-1234.5,
                    scorer="default", model_id="vae-vector-1")
    good = {
        "v2-gray": seal_record(pixels(1, (64, 64)), meta, "cam-vector", investigator.public, device, CREATED, EXPIRES,
                               record_id="0123456789abcdef0123456789abcdef", sequence=41),
        "v2-evidence": seal_record(
            pixels(2, (64, 64)), meta, "cam-vector", investigator.public, device, CREATED + 1, EXPIRES + 1,
            extras=[SealedImage(pixels(3, (64, 64)), CREATED - 2.0, role="extra", box=(121, 81, 185, 145), score=-1300.0),
                    SealedImage(pixels(4, (48, 40, 3)), CREATED - 2.5, role="evidence", box=(100, 52, 205, 178), scale=0.5,
                                padded=False)],
            record_id="fedcba9876543210fedcba9876543210", sequence=42, provisional=True),
        "v1-gray": seal_record(pixels(5, (64, 64)), meta, "cam-vector", investigator.public, device, CREATED, EXPIRES,
                               record_id="11111111111111111111111111111111", version=1),
    }
    expected: dict = {"keys": {"investigator_key_id": investigator.key_id, "device_key_id": device.key_id},
                      "records": [], "malformed": []}
    for name, data in good.items():
        record = open_record(data, investigator, [device.public])
        path = records_dir / f"{name}.snap"
        path.write_bytes(data)
        names = [layout.image_file_name(record.header.record_id, i, image.info) for i, image in enumerate(record.images)]
        summary = record.summary(names)
        for file_name, image in zip(names, record.images):
            (opened_dir / file_name).write_bytes(image.png)
        (opened_dir / f"{record.header.record_id}.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        expected["records"].append({"file": f"records/{name}.snap", "record_id": record.header.record_id,
                                    "json": f"opened/{record.header.record_id}.json",
                                    "images": [f"opened/{n}" for n in names]})

    png = layout.encode_png(pixels(6, (64, 64)))
    ok_images = [image_entry(64, 64)]

    def crafted(**kwargs):
        images = kwargs.pop("images", [png])
        meta_doc = good_meta(device, kwargs.pop("entries", ok_images), **kwargs.pop("meta", {}))
        return craft_meta(device, investigator.public, meta_doc, images, **kwargs)

    base = crafted()
    flipped = bytearray(base)
    flipped[20] ^= 0x01  # in the record id: the outer signature breaks
    resigned_header = bytearray(base[:96])
    resigned_header[36:44] = (int.from_bytes(base[36:44], "big") + 86400).to_bytes(8, "big")
    body = base[160:]
    resigned = bytes(resigned_header) + device.sign(layout.OUTER_DOMAINS[2] + bytes(resigned_header) + body) + body
    bmp = b"BM" + bytes(60)
    malformed = {
        "not-a-record": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "version-9": base[:8] + b"\x00\x09" + base[10:],
        "flags": base[:10] + b"\x00\x01" + base[12:],
        "truncated": base[:-1],
        "trailing": base + b"\x00",
        "header-flipped": bytes(flipped),
        "expires-before-created": crafted(created_s=1_800_000_000, expires_s=1_799_996_400),
        "untrusted-device": craft_meta(other, investigator.public, good_meta(other, ok_images), [png]),
        "header-resigned": resigned,
        "meta-nan": craft(device, investigator.public,
                          json.dumps(good_meta(device, ok_images)).replace("-1234.5", "NaN", 1).encode(), [png]),
        "meta-track-id-float": crafted(meta={"track_id": 7.9}),
        "meta-frame-time-string": crafted(meta={"frame_time": "123"}),
        "meta-unknown-key": crafted(meta={"colour": "red"}),
        "meta-wrong-device": crafted(meta={"device_key_id": "0" * 16}),
        "role-path": crafted(entries=[image_entry(64, 64), image_entry(64, 64, role="x/y")], images=[png, png]),
        "role-first-not-best": crafted(entries=[image_entry(64, 64, role="extra")]),
        "image-bmp": crafted(images=[bmp]),
        "image-size": crafted(entries=[image_entry(32, 64)]),
        "camera-id-escape": crafted(meta={"camera_id": "cam\u001b[2J"}),
    }
    for name, data in malformed.items():
        path = bad_dir / f"{name}.snap"
        path.write_bytes(data)
        stage, error = "open", None
        try:
            verify_record(data, [device.public], source=f"malformed/{name}.snap")
        except layout.RecordError as caught:
            stage, error = "verify", caught
        if error is None:
            try:
                open_record(data, investigator, [device.public], source=f"malformed/{name}.snap")
            except layout.RecordError as caught:
                error = caught
        assert error is not None, name
        expected["malformed"].append({"file": f"malformed/{name}.snap", "fails_at": stage, "reason": error.reason,
                                      "message": str(error)})
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {len(good)} records, {len(malformed)} malformed records, keys into {HERE}")


if __name__ == "__main__":
    main()
