"""The committed known-answer vectors (docs/FORMAT.md, "Test vectors"): keys, records of format 1
and 2 with their expected opened JSON and PNG bytes, and malformed records with the exact error
each must give. Another implementation runs the same checks against the same files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from snapseal.cli import main
from snapseal.daemon import keys
from snapseal.daemon.records.layout import RecordError
from snapseal.daemon.records.verify import verify_record
from snapseal.investigator.open import open_record

HERE = Path(__file__).resolve().parent
EXPECTED = json.loads((HERE / "expected.json").read_text())


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory) -> Path:
    """The vector keys with the modes git does not keep (private files 0600)."""
    directory = tmp_path_factory.mktemp("vector-keys")
    for path in (HERE / "keys").iterdir():
        shutil.copy(path, directory / path.name)
        os.chmod(directory / path.name, 0o600 if path.suffix == ".key" else 0o644)
    return directory


def test_vector_keys_load_with_their_key_ids(key_dir):
    assert keys.load_investigator_private(key_dir / "investigator.key").key_id == EXPECTED["keys"]["investigator_key_id"]
    assert keys.load_investigator_public(key_dir / "investigator.pub").key_id == EXPECTED["keys"]["investigator_key_id"]
    assert keys.load_device_signing(key_dir / "device.key").key_id == EXPECTED["keys"]["device_key_id"]
    assert [k.key_id for k, _ in keys.load_trust_file(key_dir / "trusted-devices.json")] == [EXPECTED["keys"]["device_key_id"]]


@pytest.mark.parametrize("vector", EXPECTED["records"], ids=lambda v: v["file"])
def test_good_vectors_open_to_the_expected_json_and_png_bytes(vector, key_dir):
    data = (HERE / vector["file"]).read_bytes()
    device = keys.load_device_public(key_dir / "device.pub")
    assert verify_record(data, [device]).record_id == vector["record_id"]
    record = open_record(data, keys.load_investigator_private(key_dir / "investigator.key"), [device])
    names = [Path(name).name for name in vector["images"]]
    assert record.summary(names) == json.loads((HERE / vector["json"]).read_text())
    assert [image.png for image in record.images] == [(HERE / name).read_bytes() for name in vector["images"]]


@pytest.mark.parametrize("vector", EXPECTED["malformed"], ids=lambda v: v["file"])
def test_malformed_vectors_give_their_exact_error(vector, key_dir):
    data = (HERE / vector["file"]).read_bytes()
    device = keys.load_device_public(key_dir / "device.pub")
    investigator = keys.load_investigator_private(key_dir / "investigator.key")
    if vector["fails_at"] == "verify":
        with pytest.raises(RecordError) as caught:
            verify_record(data, [device], source=vector["file"])
    else:
        verify_record(data, [device], source=vector["file"])
        with pytest.raises(RecordError) as caught:
            open_record(data, investigator, [device], source=vector["file"])
    assert (caught.value.reason, str(caught.value)) == (vector["reason"], vector["message"])


def test_snapseal_open_writes_the_vector_files_byte_for_byte(key_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["open", str(HERE / "records"), "--key", str(key_dir / "investigator.key"), "--out", str(out)]) == 0
    for vector in EXPECTED["records"]:
        for name in vector["images"]:
            assert (out / Path(name).name).read_bytes() == (HERE / name).read_bytes()
        written = json.loads((out / Path(vector["json"]).name).read_text())
        assert written.pop("source").endswith(vector["file"].split("/")[-1])
        assert written == json.loads((HERE / vector["json"]).read_text())
    assert main(["open", str(HERE / "malformed"), "--key", str(key_dir / "investigator.key"), "--out",
                 str(tmp_path / "bad")]) == 1
    assert not list((tmp_path / "bad").iterdir())
    assert "Traceback" not in capsys.readouterr().err
