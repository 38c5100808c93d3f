"""Key pairs and key files (daemon/keys.py)."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from snapseal.daemon import files, keys
from snapseal.daemon.errors import SnapsealError


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """A permissive umask: the key writer must set 0600 itself, not rely on the umask."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_investigator_keys_round_trip_and_modes(tmp_path, open_umask):
    pair = keys.InvestigatorKeyPair.generate()
    pub_path, key_path = keys.save_investigator_keys(pair, tmp_path / "inv")
    assert pub_path.name == "investigator.pub" and key_path.name == "investigator.key"
    assert _mode(key_path) == 0o600
    assert _mode(pub_path) == 0o644
    assert keys.load_investigator_public(pub_path).public_bytes == pair.public.public_bytes
    assert keys.load_investigator_private(key_path).private_bytes == pair.private_bytes
    assert keys.load_investigator_public(pub_path).key_id == pair.key_id
    assert len(pair.key_id) == 16
    assert sorted(p.name for p in (tmp_path / "inv").iterdir()) == ["investigator.key", "investigator.pub"]


def test_device_keys_round_trip_and_modes(tmp_path, open_umask):
    pair = keys.DeviceKeyPair.generate()
    pub_path, key_path = keys.save_device_keys(pair, tmp_path)
    assert (pub_path.name, key_path.name) == ("device.pub", "device.key")
    assert _mode(key_path) == 0o600
    loaded = keys.load_device_signing(key_path)
    assert loaded.seed_bytes == pair.seed_bytes
    signature = loaded.sign(b"message")
    keys.load_device_public(pub_path).verify_key.verify(b"message", signature)


def test_refuses_to_overwrite_unless_forced(tmp_path):
    first = keys.InvestigatorKeyPair.generate()
    keys.save_investigator_keys(first, tmp_path)
    with pytest.raises(SnapsealError, match="refusing to overwrite.*--force"):
        keys.save_investigator_keys(keys.InvestigatorKeyPair.generate(), tmp_path)
    assert keys.load_investigator_private(tmp_path / "investigator.key").key_id == first.key_id
    second = keys.InvestigatorKeyPair.generate()
    keys.save_investigator_keys(second, tmp_path, force=True)
    assert keys.load_investigator_private(tmp_path / "investigator.key").key_id == second.key_id
    assert _mode(tmp_path / "investigator.key") == 0o600


def test_refusal_leaves_no_half_pair(tmp_path):
    (tmp_path / "investigator.key").write_text("someone's old key")
    with pytest.raises(SnapsealError, match="investigator.key"):
        keys.save_investigator_keys(keys.InvestigatorKeyPair.generate(), tmp_path)
    assert not (tmp_path / "investigator.pub").exists()


@pytest.mark.parametrize("loader, wrong_file", [
    (keys.load_investigator_public, "device.pub"),
    (keys.load_investigator_private, "investigator.pub"),
    (keys.load_device_signing, "investigator.key"),
    (keys.load_device_public, "device.key"),
    (keys.load_investigator_public, "investigator.key"),
])
def test_wrong_kind_of_key_is_one_line_error_naming_the_file(tmp_path, loader, wrong_file):
    keys.save_investigator_keys(keys.InvestigatorKeyPair.generate(), tmp_path)
    keys.save_device_keys(keys.DeviceKeyPair.generate(), tmp_path)
    with pytest.raises(SnapsealError) as caught:
        loader(tmp_path / wrong_file)
    message = str(caught.value)
    assert str(tmp_path / wrong_file) in message
    assert "expected" in message and "\n" not in message


def test_private_key_given_to_the_camera_gets_a_hint(tmp_path):
    keys.save_investigator_keys(keys.InvestigatorKeyPair.generate(), tmp_path)
    with pytest.raises(SnapsealError, match="never be on a camera"):
        keys.load_investigator_public(tmp_path / "investigator.key")


def test_missing_garbled_and_foreign_files(tmp_path):
    with pytest.raises(SnapsealError, match="not found"):
        keys.load_device_signing(tmp_path / "nope.key")
    with pytest.raises(SnapsealError, match="is a directory"):
        keys.load_device_signing(tmp_path)
    (tmp_path / "junk.key").write_bytes(os.urandom(100))
    with pytest.raises(SnapsealError, match="junk.key: not a snapseal key file"):
        keys.load_device_signing(tmp_path / "junk.key")
    (tmp_path / "other.json").write_text(json.dumps({"hello": "world"}))
    with pytest.raises(SnapsealError, match="no type tag"):
        keys.load_device_public(tmp_path / "other.json")


def test_a_garbled_key_value_is_caught_by_its_key_id(tmp_path):
    keys.save_device_keys(keys.DeviceKeyPair.generate(), tmp_path)
    path = tmp_path / "device.pub"
    document = json.loads(path.read_text())
    raw = bytearray(base64.b64decode(document["key"]))
    raw[0] ^= 0x01
    document["key"] = base64.b64encode(bytes(raw)).decode()
    path.write_text(json.dumps(document))
    with pytest.raises(SnapsealError, match="device.pub: garbled key"):
        keys.load_device_public(path)
    document["key"] = "not base64!!"
    path.write_text(json.dumps(document))
    with pytest.raises(SnapsealError, match="not base64"):
        keys.load_device_public(path)


def test_describe_key_file(tmp_path):
    pair = keys.DeviceKeyPair.generate()
    keys.save_device_keys(pair, tmp_path)
    assert keys.describe_key_file(tmp_path / "device.key") == ("device-private", pair.key_id)
    assert keys.describe_key_file(tmp_path / "device.pub") == ("device-public", pair.key_id)


def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch):
    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        files.write_file_atomically(tmp_path / "secret.key", b"x" * 100, mode=0o600)
    assert list(tmp_path.iterdir()) == []
