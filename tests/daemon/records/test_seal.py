"""The sealed record format (daemon/records/layout.py, seal.py, verify.py; investigator/open.py): round trip, keys, tampering of every byte."""

from __future__ import annotations

import json
import struct
from datetime import timedelta

import cv2
import nacl.public
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapseal.daemon.keys import DeviceKeyPair, InvestigatorKeyPair
from snapseal.daemon.records import layout
from snapseal.daemon.records.layout import (
    HEADER_SIZE,
    PREFIX_SIZE,
    CorruptRecordError,
    CropMeta,
    NotARecordError,
    RecordError,
    TamperedRecordError,
    UnsupportedVersionError,
    UntrustedDeviceError,
    WrongRecipientError,
    parse_header,
)
from snapseal.daemon.records.seal import RecordSealer, SealedImage
from snapseal.daemon.records.verify import verify_record
from snapseal.investigator.open import open_record
from snapseal.daemon.types import Box, Detection, FaceCrop, ScoredCrop

NOW = 1_800_000_000.0
INVESTIGATOR = InvestigatorKeyPair.generate()
DEVICE = DeviceKeyPair.generate()


def _crop(seed: int, shape=(64, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _meta(track_id: int = 7) -> CropMeta:
    return CropMeta(track_id=track_id, frame_time=NOW - 3.25, box=(10.5, 20.0, 74.5, 84.0), score=-1234.5,
                    scorer="default", model_id="vae-test-1")


def _sealer(device: DeviceKeyPair = DEVICE, investigator: InvestigatorKeyPair = INVESTIGATOR) -> RecordSealer:
    return RecordSealer(investigator.public, device, camera_id="cam-01", retention=timedelta(days=10),
                        clock=lambda: NOW)


# One small record shared by the byte-flip tests (hypothesis can't use function-scoped fixtures).
SMALL_RECORD = _sealer().seal(_crop(1, (12, 10)), _meta())


def test_round_trip_restores_crop_and_metadata_exactly():
    crop = _crop(0)
    record = _sealer().seal(crop, _meta())
    opened = open_record(record, INVESTIGATOR, trusted_device_keys=[DEVICE.public])
    assert np.array_equal(opened.crop, crop)
    assert opened.meta == _meta()
    assert opened.camera_id == "cam-01"
    assert opened.device_trusted
    header = opened.header
    assert header.created == NOW and header.expires == NOW + 10 * 86400
    assert header.recipient_key_id == INVESTIGATOR.key_id
    assert header.device_key_id == DEVICE.key_id
    assert len(header.record_id) == 32 and header.record_length == len(record)
    summary = opened.summary()
    for name in ("track_id", "frame_time", "box", "score", "scorer", "camera_id", "model_id", "device_key_id",
                 "created", "expires"):
        assert name in summary
    json.dumps(summary)


def test_color_crop_extras_and_clip_round_trip():
    crop = _crop(2, (40, 30, 3))
    extras = [SealedImage(_crop(3), NOW - 4, role="extra", box=Box(1, 2, 3, 4), score=-2000.0),
              SealedImage(_crop(4), NOW - 3.3, role="clip"), SealedImage(_crop(5), NOW - 3.2, role="clip")]
    opened = open_record(_sealer().seal(crop, _meta(), extras=extras), INVESTIGATOR)
    assert np.array_equal(opened.crop, crop)
    assert [image.role for image in opened.images] == ["best", "extra", "clip", "clip"]
    for extra, image in zip(extras, opened.extras):
        assert np.array_equal(image.pixels, extra.pixels)
        assert image.frame_time == extra.frame_time
    assert opened.extras[0].box == (1.0, 2.0, 3.0, 4.0) and opened.extras[0].score == -2000.0
    assert not opened.device_trusted


def test_meta_from_scored_crop_and_non_finite_score():
    pixels = _crop(6)
    detection = Detection(box=Box(5, 6, 69, 70), landmarks=np.zeros((5, 2)), confidence=0.99)
    scored = ScoredCrop(crop=FaceCrop(pixels=pixels, detection=detection, frame_index=3, timestamp=NOW - 1),
                        score=float("-inf"), scorer="paper")
    meta = CropMeta.from_scored(scored, track_id=np.int64(4), model_id="m")
    assert meta.box == (5.0, 6.0, 69.0, 70.0) and meta.score is None and meta.track_id == 4
    opened = open_record(_sealer().seal(pixels, meta, extras=[SealedImage.from_scored(scored)]), INVESTIGATOR)
    assert opened.meta == meta and opened.extras[0].score is None


def test_records_are_distinct_and_hide_the_crop():
    crop = _crop(7)
    first, second = _sealer().seal(crop, _meta()), _sealer().seal(crop, _meta())
    assert parse_header(first).record_id != parse_header(second).record_id
    png = layout.encode_png(crop)
    for record in (first, second):
        assert b"\x89PNG" not in record and png[8:40] not in record and crop.tobytes()[:32] not in record


def test_opens_with_the_right_key_only():
    record = _sealer().seal(_crop(8), _meta())
    with pytest.raises(WrongRecipientError, match="wrong-key"):
        open_record(record, InvestigatorKeyPair.generate())


def test_forged_recipient_id_still_does_not_open():
    """Someone rewrites the recipient id to match their key: the outer signature breaks."""
    other = InvestigatorKeyPair.generate()
    data = bytearray(_sealer().seal(_crop(9), _meta()))
    data[44:52] = bytes.fromhex(other.key_id)
    with pytest.raises(TamperedRecordError):
        open_record(bytes(data), other)


def test_foreign_device_rejected_when_trusted_keys_given():
    foreign = DeviceKeyPair.generate()
    record = _sealer(device=foreign).seal(_crop(10), _meta())
    with pytest.raises(UntrustedDeviceError, match=foreign.key_id):
        verify_record(record, trusted_device_keys=[DEVICE.public])
    with pytest.raises(UntrustedDeviceError):
        open_record(record, INVESTIGATOR, trusted_device_keys=[DEVICE.public.public_bytes])
    assert open_record(record, INVESTIGATOR).header.device_key_id == foreign.key_id  # no trust set: named


def _with_expiry(record: bytes, new_expires_ms: int) -> bytes:
    header = bytearray(record[:HEADER_SIZE])
    struct.pack_into(">q", header, 36, new_expires_ms // 1000)  # format 2: whole seconds
    return bytes(header) + record[HEADER_SIZE:]


def _resign_outer(record: bytes, device: DeviceKeyPair) -> bytes:
    header, body = record[:HEADER_SIZE], record[PREFIX_SIZE:]
    return header + device.sign(layout.OUTER_DOMAIN + header + body) + body


def test_extended_expiry_is_detected():
    record = _sealer().seal(_crop(11), _meta())
    extended = _with_expiry(record, parse_header(record).expires_ms + 365 * 86400 * 1000)
    assert parse_header(extended).expires > parse_header(record).expires
    with pytest.raises(TamperedRecordError):
        verify_record(extended)
    with pytest.raises(TamperedRecordError):
        open_record(extended, INVESTIGATOR)


def test_header_changed_and_outer_resigned_is_caught_by_the_signed_copy_inside():
    """Even with the device key, a rewritten plaintext header differs from the sealed copy."""
    record = _sealer().seal(_crop(12), _meta())
    forged = _resign_outer(_with_expiry(record, parse_header(record).expires_ms + 1000), DEVICE)
    verify_record(forged)  # public checks can't see inside the box: documented limit
    with pytest.raises(TamperedRecordError, match="signed copy inside"):
        open_record(forged, INVESTIGATOR)


def test_swapped_device_key_and_outer_signature_is_caught():
    """An attacker re-signs someone else's ciphertext with their own device key."""
    record = _sealer().seal(_crop(13), _meta())
    attacker = DeviceKeyPair.generate()
    header = bytearray(record[:HEADER_SIZE])
    header[52:84] = attacker.public.public_bytes
    swapped = _resign_outer(bytes(header) + record[HEADER_SIZE:], attacker)
    assert verify_record(swapped).device_key_id == attacker.key_id
    with pytest.raises(UntrustedDeviceError):
        verify_record(swapped, trusted_device_keys=[DEVICE.public])
    with pytest.raises(TamperedRecordError):
        open_record(swapped, INVESTIGATOR)


def _record_with_payload(payload: bytes) -> bytes:
    """A correctly signed and sealed record around an arbitrary payload (device bug simulation)."""
    header = layout.RecordHeader(record_id="ab" * 16, created_ms=1, expires_ms=2, recipient_key_id=INVESTIGATOR.key_id,
                               device_public_key=DEVICE.public.public_bytes,
                               body_length=layout.SEALED_BOX_OVERHEAD + PREFIX_SIZE + len(payload)).pack()
    inner = DEVICE.sign(layout.INNER_DOMAIN + header + payload) + header + payload
    body = nacl.public.SealedBox(INVESTIGATOR.public.key).encrypt(inner)
    return header + DEVICE.sign(layout.OUTER_DOMAIN + header + body) + body


@pytest.mark.parametrize("payload", [
    b"",
    struct.pack(">I", 1000) + b"{}",
    struct.pack(">I", 2) + b"{}" + struct.pack(">H", 0),
    struct.pack(">I", 2) + b"{}" + struct.pack(">H", 1) + struct.pack(">I", 3) + b"abc",
    struct.pack(">I", 2) + b"[]" + struct.pack(">H", 1) + struct.pack(">I", 3) + b"abc" + b"trailing",
])
def test_signed_but_malformed_payload_is_corrupt(payload):
    record = _record_with_payload(payload)
    verify_record(record)
    with pytest.raises(CorruptRecordError):
        open_record(record, INVESTIGATOR)


def test_signed_payload_with_undecodable_image_is_corrupt():
    meta = json.dumps({"camera_id": "c", "track_id": 1, "frame_time": 1.0, "box": [0, 0, 1, 1], "score": 1.0,
                       "scorer": "s", "model_id": "m", "device_key_id": DEVICE.key_id,
                       "images": [{"role": "best", "frame_time": 1.0, "box": None, "score": None}]}).encode()
    payload = struct.pack(">I", len(meta)) + meta + struct.pack(">H", 1) + struct.pack(">I", 3) + b"abc"
    with pytest.raises(CorruptRecordError, match="PNG"):
        open_record(_record_with_payload(payload), INVESTIGATOR)


def test_every_single_byte_flip_is_detected_by_open_and_verify():
    for position in range(len(SMALL_RECORD)):
        data = bytearray(SMALL_RECORD)
        data[position] ^= 0x01
        with pytest.raises(RecordError):
            verify_record(bytes(data))
        with pytest.raises(RecordError):
            open_record(bytes(data), INVESTIGATOR)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0, max_value=len(SMALL_RECORD) - 1), mask=st.integers(1, 255))
def test_any_byte_corruption_is_detected(position, mask):
    data = bytearray(SMALL_RECORD)
    data[position] ^= mask
    with pytest.raises(RecordError):
        verify_record(bytes(data))
    with pytest.raises(RecordError):
        open_record(bytes(data), INVESTIGATOR, trusted_device_keys=[DEVICE.public])


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(SMALL_RECORD) - 1), extra=st.binary(min_size=1, max_size=8))
def test_truncated_or_extended_records_are_detected(cut, extra):
    with pytest.raises(RecordError):
        verify_record(SMALL_RECORD[:cut])
    with pytest.raises(CorruptRecordError, match="trailing"):
        verify_record(SMALL_RECORD + extra)


def test_specific_failure_kinds():
    with pytest.raises(NotARecordError):
        verify_record(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    bumped = bytearray(SMALL_RECORD)
    struct.pack_into(">H", bumped, 8, 99)  # format 2 is current: an unknown version
    with pytest.raises(UnsupportedVersionError, match="version 99"):
        verify_record(bytes(bumped))
    with pytest.raises(CorruptRecordError, match="truncated"):
        verify_record(SMALL_RECORD[:-1])
    with pytest.raises(TamperedRecordError, match="x.snap: tampered"):
        data = bytearray(SMALL_RECORD)
        data[-1] ^= 0xFF
        verify_record(bytes(data), source="x.snap")


def test_bad_inputs_to_the_sealer():
    with pytest.raises(ValueError, match="uint8"):
        _sealer().seal(np.zeros((8, 8), dtype=np.float32), _meta())
    with pytest.raises(ValueError, match="shape"):
        _sealer().seal(np.zeros((8, 8, 2), dtype=np.uint8), _meta())
    with pytest.raises(ValueError, match="retention"):
        RecordSealer(INVESTIGATOR.public, DEVICE, "cam", retention=0)
    with pytest.raises(TypeError, match="InvestigatorPublicKey"):
        RecordSealer(INVESTIGATOR, DEVICE, "cam", retention=10)  # the private pair: refused


def test_png_is_lossless_through_cv2():
    crop = _crop(14, (64, 64))
    decoded = cv2.imdecode(np.frombuffer(layout.encode_png(crop), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, crop)
