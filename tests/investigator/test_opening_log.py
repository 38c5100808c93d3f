"""The opening log (investigator/opening_log.py): hash chain, signatures, who may sign what, and
the first bad entry named for a removed, reordered, edited or forged entry."""

from __future__ import annotations

import json

import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapseal.cli import main
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keyring import b64, canonical_json
from snapseal.investigator.opening_log import (
    GENESIS_PREV,
    OpeningLog,
    entry_hash,
    log_head,
    read_entries,
    verify_log,
)



def write_authority_pub(path, authority):
    from snapseal.daemon.keys import key_id_of

    key = bytes(authority.verify_key)
    path.write_text(json.dumps({"snapseal_authority": 1, "authority_id": key_id_of(key), "sign_key": b64(key)}))


@pytest.fixture
def keys():
    return nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()  # authority, custodian


@pytest.fixture
def log(tmp_path, keys):
    authority, custodian = keys
    opening_log = OpeningLog(tmp_path / "opening.log")
    opening_log.append("log-created", authority, "init", create=True,
                       detail={"custodian_key": b64(bytes(custodian.verify_key))})
    for index in range(5):
        signer = custodian if index % 2 else authority
        kind = "keys-destroyed" if index % 2 else "keyring-issued"
        opening_log.append(kind, signer, f"who {index}", detail={"n": index}, records=[f"r{index}"])
    return opening_log


def lines_of(path):
    return path.read_bytes().split(b"\n")[:-1]


def put(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_a_fresh_log_checks_out_and_its_head_is_the_last_hash(log, keys):
    check = verify_log(log.path, bytes(keys[0].verify_key))
    assert check.ok and check.entries == 6
    entries = read_entries(log.path)
    assert entries[0]["prev"] == GENESIS_PREV
    assert all(b["prev"] == entry_hash(a) for a, b in zip(entries, entries[1:]))
    assert check.head == entry_hash(entries[-1]) and check.hashes[-1] == check.head
    head = log_head(log.path)
    assert head.startswith("snapseal-log v1 entries 6 head " + check.head) and "\n" not in head


@pytest.mark.parametrize("damage, bad", [
    ("remove 3", 3),   # entry 3 gone: what was entry 4 now sits at line 3 with the wrong seq
    ("remove 1", 1),
    ("swap 2 4", 2),
    ("edit 4", 4),
    ("edit-resign 3", 3),  # edited and re-signed with another key: not a key allowed to sign it
])
def test_removed_reordered_or_edited_entries_are_found_and_named(log, keys, damage, bad):
    lines = lines_of(log.path)
    action, *where = damage.split()
    numbers = [int(w) for w in where]
    if action == "remove":
        del lines[numbers[0] - 1]
    elif action == "swap":
        a, b = numbers[0] - 1, numbers[1] - 1
        lines[a], lines[b] = lines[b], lines[a]
    elif action == "edit":
        entry = json.loads(lines[numbers[0] - 1])
        entry["records"] = ["somebody-else"]
        lines[numbers[0] - 1] = canonical_json(entry)
    elif action == "edit-resign":
        intruder = nacl.signing.SigningKey.generate()
        entry = json.loads(lines[numbers[0] - 1])
        entry["who"] = "nobody"
        entry["signer_key"] = b64(bytes(intruder.verify_key))
        from snapseal.investigator.opening_log import _signed_bytes

        entry["sig"] = b64(intruder.sign(_signed_bytes(entry)).signature)
        lines[numbers[0] - 1] = canonical_json(entry)
    put(log.path, lines)
    check = verify_log(log.path, bytes(keys[0].verify_key))
    assert not check.ok and check.bad_entry == bad and check.entries == bad - 1
    assert "\n" not in check.reason


def test_cutting_off_the_tail_is_caught_by_the_published_head(log, keys, capsys):
    write_authority_pub(log.path.parent / "authority.pub", keys[0])
    published = verify_log(log.path, bytes(keys[0].verify_key)).head
    put(log.path, lines_of(log.path)[:-2])
    assert verify_log(log.path, bytes(keys[0].verify_key)).ok  # a shorter chain is still a chain...
    assert main(["log", "verify", str(log.path), "--expect-head", published]) == 1  # ...but not the published one
    assert "not in this log" in capsys.readouterr().out
    assert main(["log", "verify", str(log.path)]) == 0


def test_cli_names_the_first_bad_entry(log, keys, capsys, tmp_path):
    write_authority_pub(tmp_path / "authority.pub", keys[0])
    assert main(["log", "verify", str(log.path)]) == 0
    assert "ok, 6 entries" in capsys.readouterr().out
    lines = lines_of(log.path)
    lines[2], lines[3] = lines[3], lines[2]
    put(log.path, lines)
    assert main(["log", "verify", str(log.path)]) == 1
    out = capsys.readouterr().out
    assert "entry 3 is bad" in out and len(out.strip().splitlines()) == 1
    assert main(["log", "head", str(log.path)]) == 0
    assert capsys.readouterr().out.startswith("snapseal-log v1 entries 6 head ")


def test_a_custodian_cannot_sign_what_only_the_authority_may(log, keys):
    authority, custodian = keys
    log.append("warrant-issued", custodian, "custodian", warrant_id="00" * 8, detail={})
    check = verify_log(log.path, bytes(authority.verify_key))
    assert check.bad_entry == 7 and "not signed by the authority" in check.reason


def test_a_stranger_cannot_destroy_keys_in_the_log_nor_open_records(log, keys):
    stranger = nacl.signing.SigningKey.generate()
    log.append("keys-destroyed", stranger, "stranger", detail={})
    check = verify_log(log.path, bytes(keys[0].verify_key))
    assert check.bad_entry == 7 and "custodian" in check.reason
    put(log.path, lines_of(log.path)[:-1])
    log.append("record-opened", stranger, "stranger", warrant_id="11" * 8, records=["r"])
    check = verify_log(log.path, bytes(keys[0].verify_key))
    assert check.bad_entry == 7 and "no earlier entry introduces" in check.reason


def test_the_wrong_authority_key_fails_at_the_first_entry(log):
    other = nacl.signing.SigningKey.generate()
    check = verify_log(log.path, bytes(other.verify_key))
    assert check.bad_entry == 1


def test_garbled_and_torn_lines(log, keys):
    lines = lines_of(log.path)
    put(log.path, lines[:2] + [b"{not json"] + lines[3:])
    assert verify_log(log.path, bytes(keys[0].verify_key)).bad_entry == 3
    put(log.path, lines)
    log.path.write_bytes(log.path.read_bytes() + b'{"seq": 6')  # a crash mid-append
    check = verify_log(log.path, bytes(keys[0].verify_key))
    assert check.bad_entry == 7 and "torn" in check.reason and check.entries == 6
    with pytest.raises(SnapsealError, match="torn"):
        log.append("keys-destroyed", keys[1], "x")  # nothing is chained onto a torn entry


def test_appending_to_a_missing_log_is_refused_unless_creating(tmp_path, keys):
    with pytest.raises(SnapsealError, match="not found"):
        OpeningLog(tmp_path / "none.log").append("keys-destroyed", keys[1], "x")
    assert not (tmp_path / "none.log").exists()
    with pytest.raises(SnapsealError, match="not found"):
        verify_log(tmp_path / "none.log", bytes(keys[0].verify_key))


def test_entries_longer_than_the_tail_read_chain_correctly(log, keys):
    authority, custodian = keys
    log.append("keyring-issued", authority, "big", detail={"key_ids": [f"{i:016x}" for i in range(20000)]})
    log.append("keys-destroyed", custodian, "after the big one")
    check = verify_log(log.path, bytes(authority.verify_key))
    assert check.ok and check.entries == 8 and len(lines_of(log.path)[-2]) > 300_000


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3), max_leaves=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_field_even_re_signed_is_named_never_a_traceback(log, keys, data):
    from snapseal.investigator.opening_log import FIELDS, _signed_bytes

    authority, _ = keys
    lines = lines_of(log.path)
    index = data.draw(st.integers(0, len(lines) - 1), label="entry")
    entry = json.loads(lines[index])
    field = data.draw(st.sampled_from([f for f in FIELDS if f not in ("sig", "signer_key")]), label="field")
    value = data.draw(json_values, label="value")
    if entry[field] == value:
        return
    entry[field] = value
    re_signed = data.draw(st.booleans(), label="re-sign")
    if re_signed:
        entry["signer_key"] = b64(bytes(authority.verify_key))
        entry["sig"] = b64(authority.sign(_signed_bytes(entry)).signature)
    path = log.path.parent / "mutated.log"
    put(path, lines[:index] + [canonical_json(entry)] + lines[index + 1:])
    check = verify_log(path, bytes(authority.verify_key))
    if re_signed and index == len(lines) - 1 and field not in ("seq", "prev", "time_ms", "time"):
        # the authority itself re-signing its own last entry with well-formed content: may be valid
        assert check.ok or "\n" not in check.reason
        return
    assert not check.ok and check.bad_entry is not None and check.bad_entry <= index + 2
    assert "\n" not in check.reason


def test_nan_in_an_entry_is_garbled_not_a_traceback(log, keys):
    lines = lines_of(log.path)
    lines[2] = lines[2].replace(b'"detail":{', b'"detail":{"x":NaN,', 1)
    put(log.path, lines)
    check = verify_log(log.path, bytes(keys[0].verify_key))
    assert check.bad_entry == 3 and "not JSON" in check.reason
