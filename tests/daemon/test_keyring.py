"""The camera's keyring (daemon/keyring.py): signature and camera checked at start, the right
period key for each record, warnings ahead of running out. Keyrings are built here with PyNaCl
alone, from the format in the module docstring (no investigator code on a camera)."""

from __future__ import annotations

import json
import logging

import nacl.public
import nacl.signing
import pytest
from tests.json_mutation import json_paths, json_values, set_at
from hypothesis import given, settings
from hypothesis import strategies as st

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keyring import (
    DAY_S,
    RUNS_OUT,
    KeyringError,
    KeyringExhaustedError,
    b64,
    canonical_json,
    keyring_signed_bytes,
    load_keyring,
    parse_keyring,
    read_authority_key,
)
from snapseal.daemon.keys import key_id_of

DAY_MS = 86_400_000
START_MS = 1_796_256_000_000  # 2026-12-03T00:00:00Z


def make_keyring(signer: nacl.signing.SigningKey, camera_id: str = "cam-01", days: int = 5,
                 start_ms: int = START_MS) -> tuple[dict, list[nacl.public.PrivateKey]]:
    privates = [nacl.public.PrivateKey.generate() for _ in range(days)]
    document = {"snapseal_keyring": 1, "camera_id": camera_id, "keyring_id": "00112233aabbccdd",
                "issued_ms": start_ms, "authority_key": b64(bytes(signer.verify_key)),
                "periods": [[start_ms + i * DAY_MS, b64(bytes(p.public_key))] for i, p in enumerate(privates)],
                "end_ms": start_ms + days * DAY_MS}
    document["signature"] = b64(signer.sign(keyring_signed_bytes(document)).signature)
    return document, privates


def write(path, document) -> None:
    path.write_bytes(canonical_json(document) + b"\n")


def write_authority(path, signer) -> None:
    key = bytes(signer.verify_key)
    path.write_text(json.dumps({"snapseal_authority": 1, "authority_id": key_id_of(key), "sign_key": b64(key),
                                "vault_key": b64(bytes(32)), "threshold": 2, "shares": 3, "created": ""}))


@pytest.fixture
def signer():
    return nacl.signing.SigningKey.generate()


@pytest.fixture
def keyring_file(tmp_path, signer):
    document, privates = make_keyring(signer)
    path = tmp_path / "keyring.json"
    write(path, document)
    authority = tmp_path / "authority.pub"
    write_authority(authority, signer)
    return path, authority, document, privates


def test_the_record_gets_the_key_of_its_period_edges_included(keyring_file):
    path, authority, _, privates = keyring_file
    keyring = load_keyring(path, "cam-01", authority, now_s=START_MS / 1000)
    for day, private in enumerate(privates):
        start_s = (START_MS + day * DAY_MS) / 1000
        for created_s in (start_s, start_s + 0.001, start_s + DAY_S - 0.001):
            assert keyring.recipient_for(created_s).public_bytes == bytes(private.public_key)
    # one millisecond before the first period and at the end: no key, nothing sealed
    for outside in (START_MS / 1000 - 0.001, keyring.end_ms / 1000):
        with pytest.raises(KeyringExhaustedError) as caught:
            keyring.recipient_for(outside)
        assert RUNS_OUT in str(caught.value) and "\n" not in str(caught.value)


def test_a_sealed_box_to_the_period_key_opens_only_with_that_periods_private_key(keyring_file):
    path, authority, _, privates = keyring_file
    keyring = load_keyring(path, "cam-01", authority, now_s=START_MS / 1000)
    box = nacl.public.SealedBox(keyring.recipient_for(START_MS / 1000 + 2 * DAY_S + 5).key).encrypt(b"crop")
    assert nacl.public.SealedBox(privates[2]).decrypt(box) == b"crop"
    for other in privates[:2] + privates[3:]:
        with pytest.raises(nacl.exceptions.CryptoError):
            nacl.public.SealedBox(other).decrypt(box)


@pytest.mark.parametrize("tamper", [
    lambda d: d["periods"][2].__setitem__(1, b64(bytes(nacl.public.PrivateKey.generate().public_key))),
    lambda d: d.__setitem__("camera_id", "cam-02"),
    lambda d: d.__setitem__("end_ms", d["end_ms"] + DAY_MS),
    lambda d: d["periods"].reverse(),
    lambda d: d["periods"].pop(1),
    lambda d: d.__setitem__("signature", b64(bytes(64))),
])
def test_a_tampered_keyring_stops_the_camera_at_start(keyring_file, tamper):
    path, authority, document, _ = keyring_file
    tamper(document)
    write(path, document)
    with pytest.raises(KeyringError) as caught:
        load_keyring(path, "cam-01", authority, now_s=START_MS / 1000)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "signature" in message


def test_a_keyring_resigned_by_someone_else_is_refused_when_the_authority_is_pinned(keyring_file):
    path, authority, _, _ = keyring_file
    intruder = nacl.signing.SigningKey.generate()
    document, _ = make_keyring(intruder)
    write(path, document)
    assert parse_keyring(path.read_bytes()).camera_id == "cam-01"  # consistent in itself
    with pytest.raises(KeyringError, match="this camera trusts authority"):
        load_keyring(path, "cam-01", authority, now_s=START_MS / 1000)


def test_a_keyring_for_another_camera_is_one_line_and_refused(keyring_file):
    path, authority, _, _ = keyring_file
    with pytest.raises(KeyringError) as caught:
        load_keyring(path, "cam-07", authority, now_s=START_MS / 1000)
    assert "for camera 'cam-01', this camera is 'cam-07'" in str(caught.value)


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"snapseal_keyring": 2}', b"\xff\xfe", b'{"x": 1}'])
def test_garbage_is_one_line_never_a_traceback(tmp_path, content):
    path = tmp_path / "keyring.json"
    path.write_bytes(content)
    with pytest.raises(SnapsealError) as caught:
        load_keyring(path, "cam-01", None)
    assert "\n" not in str(caught.value)


def test_missing_keyring_and_missing_authority_are_one_line(tmp_path, keyring_file):
    path, _, _, _ = keyring_file
    with pytest.raises(KeyringError, match="keyring not found"):
        load_keyring(tmp_path / "nope.json", "cam-01", None)
    with pytest.raises(KeyringError, match="authority key file not found"):
        read_authority_key(tmp_path / "nope.pub")
    with pytest.raises(KeyringError, match="authority key file not found"):
        load_keyring(path, "cam-01", tmp_path / "nope.pub", now_s=START_MS / 1000)


def test_a_keyring_that_ran_out_stops_the_start_and_says_what_happens(keyring_file):
    path, authority, _, _ = keyring_file
    with pytest.raises(KeyringError) as caught:
        load_keyring(path, "cam-01", authority, now_s=START_MS / 1000 + 5 * DAY_S)
    assert "ran out" in str(caught.value) and RUNS_OUT in str(caught.value)


def test_it_warns_well_ahead_and_not_on_every_record(keyring_file, caplog):
    path, authority, _, _ = keyring_file
    keyring = load_keyring(path, "cam-01", authority, now_s=START_MS / 1000, low_warning_days=2)
    assert keyring.health(START_MS / 1000).level == "ok"
    assert keyring.status(START_MS / 1000) == "keyring 5 days left"
    low_at = START_MS / 1000 + 3.5 * DAY_S
    with caplog.at_level(logging.WARNING, logger="snapseal.keyring"):
        for step in range(100):
            keyring.recipient_for(low_at + step)
    warnings = [r for r in caplog.records if "runs low" in r.getMessage()]
    assert len(warnings) == 1
    assert "1.5 days left" in keyring.status(low_at)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="snapseal.keyring"):
        keyring.warn_if_low(low_at + 7 * 3600)  # the next reminder comes after WARN_EVERY_S
    assert any("runs low" in r.getMessage() for r in caplog.records)


def test_a_clock_before_the_first_period_is_said_not_fatal(keyring_file):
    path, authority, _, _ = keyring_file
    keyring = load_keyring(path, "cam-01", authority, now_s=0.0)  # a board without RTC before NTP
    assert keyring.health(0.0).level == "early"
    with pytest.raises(KeyringExhaustedError, match="before its first period"):
        keyring.recipient_for(0.0)


def test_without_a_pinned_authority_the_keyrings_own_signature_is_still_checked(keyring_file):
    path, _, document, _ = keyring_file
    document["periods"][0][0] -= 1
    write(path, document)
    with pytest.raises(KeyringError, match="signature"):
        load_keyring(path, "cam-01", None, now_s=START_MS / 1000)


def test_the_service_refuses_to_start_on_a_tampered_keyring_and_seals_with_a_good_one(tmp_path, signer):
    """Through the daemon's own start-up path (service.load_recipient + the sealer)."""
    import time as _time

    from snapseal.daemon.config import load_config
    from snapseal.daemon.records.layout import CropMeta, parse_header
    from snapseal.daemon.records.seal import RecordSealer
    from snapseal.daemon.service import load_recipient
    from snapseal.daemon.keys import DeviceKeyPair

    today_ms = int(_time.time() // 86400) * DAY_MS
    document, privates = make_keyring(signer, days=3, start_ms=today_ms)
    keyring_path, authority = tmp_path / "keyring.json", tmp_path / "authority.pub"
    write(keyring_path, document)
    write_authority(authority, signer)
    config_path = tmp_path / "snapseal.toml"
    config_path.write_text(f'[camera]\ncamera_id = "cam-01"\n[keys]\nkeyring = "{keyring_path}"\n'
                           f'keyring_authority = "{authority}"\n')
    _, keyring = load_recipient(load_config(config_path))
    import numpy as np

    sealer = RecordSealer(keyring, DeviceKeyPair.generate(), "cam-01", retention=86400.0)
    now_s = today_ms / 1000 + DAY_S + 60
    record = sealer.seal(np.zeros((64, 64), np.uint8), CropMeta(track_id=1, frame_time=now_s, box=(0, 0, 9, 9),
                                                                score=None, scorer="default", model_id="m"), now=now_s)
    assert parse_header(record).recipient_key_id == key_id_of(bytes(privates[1].public_key))
    document["periods"][1][1] = document["periods"][0][1]
    write(keyring_path, document)
    with pytest.raises(SnapsealError) as caught:
        load_recipient(load_config(config_path))
    assert "signature" in str(caught.value) and "\n" not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_re_signed_keyring_with_any_field_changed_loads_or_is_one_line(data):
    """Content its authority signed is still checked for shape; never a traceback, and a keyring
    that loads still gives every record in it a 32-byte key or a one-line refusal."""
    signer = nacl.signing.SigningKey.generate()
    document, _ = make_keyring(signer, days=3)
    where = data.draw(st.sampled_from([p for p in list(json_paths(document))[1:] if p != ("signature",)]), label="path")
    set_at(document, where, data.draw(json_values, label="value"))
    try:
        document["signature"] = b64(signer.sign(keyring_signed_bytes(document)).signature)
    except (ValueError, TypeError):
        return  # not JSON-encodable (NaN): no signer could have produced it
    try:
        keyring = parse_keyring(canonical_json(document))
    except SnapsealError as error:
        assert "\n" not in str(error)
        return
    for period in keyring.periods:
        for ms in (period.start_ms, period.end_ms - 1):
            assert len(keyring.recipient_for(ms / 1000).public_bytes) == 32


@pytest.mark.parametrize("start_ms", [-DAY_MS, 253_402_300_800_000])
def test_times_outside_1970_to_9999_are_refused(signer, start_ms):
    document, _ = make_keyring(signer, days=1, start_ms=start_ms)
    with pytest.raises(KeyringError, match="1970 to 9999"):
        parse_keyring(canonical_json(document))
