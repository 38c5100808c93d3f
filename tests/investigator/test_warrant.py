"""Warrants (investigator/warrant.py, `snapseal warrant ...`): only the covered period keys, the
window enforced, every opening logged first, and bad input refused in one line with nothing
opened and nothing written."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import date

import nacl.public
import pytest
from tests.json_mutation import json_paths, json_values, set_at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapseal.cli import main
from snapseal.daemon.errors import SnapsealError
from snapseal.investigator import authority as auth
from snapseal.investigator import warrant as wr
from snapseal.investigator.opening_log import read_entries, verify_log

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
START = date(2026, 12, 3)
START_MS = 1_796_256_000_000  # 2026-12-03T00:00:00Z


@dataclass(frozen=True)
class Header:
    record_id: str
    recipient_key_id: str
    created_ms: int
    device_key_id: str = "d" * 16


@dataclass(frozen=True)
class Opened:
    header: Header
    camera_id: str


@pytest.fixture
def setup(tmp_path):
    auth.init_authority(tmp_path / "auth", 2, 3, tmp_path / "shares", who="test")
    authority = auth.Authority(tmp_path / "auth")
    shares = sorted((tmp_path / "shares").glob("share-*"))
    keyrings = {}
    with authority.unlock_files(shares[:2]) as secret:
        for camera in ("cam-01", "cam-02"):
            issued = auth.issue_keyring(authority, secret, camera, days=10, start_day=START, at_ms=START_MS)
            path = tmp_path / f"{camera}.keyring"
            path.write_bytes(issued.blob)
            from snapseal.daemon.keyring import load_keyring

            keyrings[camera] = load_keyring(path, camera, tmp_path / "auth" / "authority.pub", now_s=START_MS / 1000)
    return tmp_path, authority, shares, keyrings


def issue(authority, shares, out, cameras=("cam-01",), start_ms=START_MS + DAY_MS + 10 * HOUR_MS,
          end_ms=START_MS + DAY_MS + 14 * HOUR_MS, at_ms=START_MS + 3 * DAY_MS, **kwargs):
    with authority.unlock_files(shares[:2]) as secret:
        return wr.issue_warrant(authority, secret, list(cameras), start_ms, end_ms, kwargs.pop("reference", "Court 7/2026"),
                                out, at_ms=at_ms, who="trustees", **kwargs)


def record(keyring, camera, created_ms, record_id="ab" * 16):
    recipient = keyring.recipient_for(created_ms / 1000)
    box = nacl.public.SealedBox(recipient.key).encrypt(b"face of " + record_id.encode())
    return Header(record_id, recipient.key_id, created_ms), box


def test_a_warrant_holds_only_its_period_keys_and_opens_only_its_window(setup):
    root, authority, shares, keyrings = setup
    warrant, notes = issue(authority, shares, root / "w.warrant")
    assert notes == []
    assert stat.S_IMODE((root / "w.warrant").stat().st_mode) == 0o600
    assert len(warrant.keys) == 1  # the window is inside one day: one period key
    source = wr.open_warrant(root / "w.warrant", root / "investigator.log", root / "auth" / "authority.pub",
                             who="inspector", at_ms=START_MS + 3 * DAY_MS)
    inside = START_MS + DAY_MS + 12 * HOUR_MS
    header, box = record(keyrings["cam-01"], "cam-01", inside)
    pair = source.key_for(header)
    assert nacl.public.SealedBox(pair.private).decrypt(box).startswith(b"face of ")
    source.admit(Opened(header, "cam-01"))
    # the same camera after the window, same day and same period key: refused before decrypting
    for outside in (START_MS + DAY_MS + 14 * HOUR_MS, START_MS + DAY_MS + 15 * HOUR_MS):
        late, _ = record(keyrings["cam-01"], "cam-01", outside)
        with pytest.raises(wr.NotCoveredError, match="after the window"):
            source.key_for(late)
    # an hour before: its coarse plaintext time cannot rule it out; its exact sealed time does
    early, _ = record(keyrings["cam-01"], "cam-01", inside - 3 * HOUR_MS)
    with pytest.raises(wr.NotCoveredError, match="outside the window"):
        source.admit(Opened(early, "cam-01"))
    with pytest.raises(wr.NotCoveredError, match="outside the window"):
        source.on_opened(Opened(early, "cam-01"))
    # the next day (another period key) and another camera: the warrant does not hold the key
    for camera, created in (("cam-01", inside + DAY_MS), ("cam-02", inside)):
        other, _ = record(keyrings[camera], camera, created)
        with pytest.raises(wr.NotCoveredError) as caught:
            source.key_for(other)
        assert "does not hold" in str(caught.value) and "\n" not in str(caught.value)
    assert not (root / "investigator.log").exists()  # nothing opened yet, nothing logged


def test_every_opening_is_logged_first_and_both_logs_check_out(setup):
    root, authority, shares, keyrings = setup
    issue(authority, shares, root / "w.warrant")
    log_path = root / "investigator.log"
    source = wr.open_warrant(root / "w.warrant", log_path, who="inspector", at_ms=START_MS + 3 * DAY_MS)
    for index in range(3):
        header, _ = record(keyrings["cam-01"], "cam-01", START_MS + DAY_MS + 11 * HOUR_MS + index, f"{index:032x}")
        source.key_for(header)
        source.on_opened(Opened(header, "cam-01"))
    entries = read_entries(log_path)
    assert [e["kind"] for e in entries] == ["warrant-presented"] + ["record-opened"] * 3
    assert [e["records"] for e in entries[1:]] == [[f"{i:032x}"] for i in range(3)]
    assert all(e["warrant_ref"] == "Court 7/2026" and e["who"] == "inspector" for e in entries)
    key = authority.public.sign_key
    assert verify_log(log_path, key).ok and verify_log(authority.log.path, key).ok
    assert [e["kind"] for e in read_entries(authority.log.path)][-1] == "warrant-issued"
    # opening in the authority's own log: the warrant-issued entry already introduces it
    source = wr.open_warrant(root / "w.warrant", authority.log.path, at_ms=START_MS + 3 * DAY_MS)
    header, _ = record(keyrings["cam-01"], "cam-01", START_MS + DAY_MS + 11 * HOUR_MS)
    source.on_opened(Opened(header, "cam-01"))
    assert [e["kind"] for e in read_entries(authority.log.path)][-2:] == ["warrant-issued", "record-opened"]
    assert verify_log(authority.log.path, key).ok


def test_a_record_whose_signed_camera_differs_is_refused_and_not_logged(setup):
    root, authority, shares, keyrings = setup
    issue(authority, shares, root / "w.warrant")
    source = wr.open_warrant(root / "w.warrant", root / "i.log", at_ms=START_MS + 3 * DAY_MS)
    header, _ = record(keyrings["cam-01"], "cam-01", START_MS + DAY_MS + 11 * HOUR_MS)
    with pytest.raises(wr.NotCoveredError, match="signed camera id"):
        source.on_opened(Opened(header, "cam-02"))
    assert not (root / "i.log").exists()


def test_no_log_no_opening(setup):
    root, authority, shares, keyrings = setup
    issue(authority, shares, root / "w.warrant")
    (root / "a-file").write_text("not a directory")
    source = wr.open_warrant(root / "w.warrant", root / "a-file" / "i.log", at_ms=START_MS + 3 * DAY_MS)
    header, _ = record(keyrings["cam-01"], "cam-01", START_MS + DAY_MS + 11 * HOUR_MS)
    with pytest.raises(SnapsealError, match="opening log") as caught:
        source.on_opened(Opened(header, "cam-01"))
    assert "\n" not in str(caught.value) and source.opened == []


def snapshot(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_warrant_for_another_camera_writes_nothing(setup):
    root, authority, shares, _ = setup
    before = snapshot(root)
    with pytest.raises(SnapsealError) as caught:
        issue(authority, shares, root / "w.warrant", cameras=("cam-99",))
    assert "never issued it a keyring" in str(caught.value) and "\n" not in str(caught.value)
    assert snapshot(root) == before


def test_a_window_without_period_keys_writes_nothing(setup):
    root, authority, shares, _ = setup
    before = snapshot(root)
    with pytest.raises(SnapsealError, match="no period key overlaps"):
        issue(authority, shares, root / "w.warrant", start_ms=START_MS + 20 * DAY_MS, end_ms=START_MS + 21 * DAY_MS)
    assert snapshot(root) == before


def test_an_expired_warrant_opens_nothing(setup):
    root, authority, shares, _ = setup
    warrant, _ = issue(authority, shares, root / "w.warrant", valid_days=2)
    before = snapshot(root)
    with pytest.raises(SnapsealError) as caught:
        wr.open_warrant(root / "w.warrant", root / "i.log", at_ms=warrant.valid_until_ms)
    assert "expired on" in str(caught.value) and "nothing opened" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert snapshot(root) == before
    wr.open_warrant(root / "w.warrant", root / "i.log", at_ms=warrant.valid_until_ms - 1)  # one ms before: fine


@pytest.mark.parametrize("edit", ["window", "valid_until", "add-key", "cameras"])
def test_a_tampered_warrant_is_refused(setup, edit):
    root, authority, shares, _ = setup
    issue(authority, shares, root / "w.warrant")
    path = root / "w.warrant"
    document = json.loads(path.read_text())
    if edit == "window":
        document["warrant"]["window"]["end_ms"] += DAY_MS
    elif edit == "valid_until":
        document["warrant"]["valid_until_ms"] += 365 * DAY_MS
    elif edit == "cameras":
        document["warrant"]["cameras"].append("cam-02")
    else:
        extra = nacl.public.PrivateKey.generate()
        from snapseal.daemon.keys import key_id_of

        document["keys"][key_id_of(bytes(extra.public_key))] = wr.b64(bytes(extra))
    path.write_text(json.dumps(document))
    with pytest.raises(SnapsealError) as caught:
        wr.open_warrant(path, root / "i.log", at_ms=START_MS + 3 * DAY_MS)
    assert "nothing opened" in str(caught.value) and "\n" not in str(caught.value)


def test_a_warrant_readable_by_others_or_from_another_authority_is_refused(setup, tmp_path):
    root, authority, shares, _ = setup
    issue(authority, shares, root / "w.warrant")
    os.chmod(root / "w.warrant", 0o644)
    with pytest.raises(SnapsealError, match="chmod 600"):
        wr.open_warrant(root / "w.warrant", root / "i.log", at_ms=START_MS + 3 * DAY_MS)
    os.chmod(root / "w.warrant", 0o600)
    auth.init_authority(tmp_path / "other", 2, 2, tmp_path / "other-shares")
    with pytest.raises(SnapsealError, match="not by the authority"):
        wr.open_warrant(root / "w.warrant", root / "i.log", tmp_path / "other" / "authority.pub",
                        at_ms=START_MS + 3 * DAY_MS)


def test_destroyed_periods_are_left_out_and_an_all_destroyed_window_is_refused(setup):
    root, authority, shares, keyrings = setup
    auth.expire_keys(authority, at_ms=START_MS + 12 * DAY_MS)  # days 0 and 1 (+10 days retention) are gone
    with pytest.raises(SnapsealError, match="destroyed at expiry"):
        issue(authority, shares, root / "w.warrant", at_ms=START_MS + 12 * DAY_MS)
    assert not (root / "w.warrant").exists()
    warrant, notes = issue(authority, shares, root / "w.warrant", start_ms=START_MS + DAY_MS,
                           end_ms=START_MS + 3 * DAY_MS, at_ms=START_MS + 12 * DAY_MS)
    assert len(warrant.keys) == 1 and "destroyed" in notes[0]
    source = wr.open_warrant(root / "w.warrant", root / "i.log", at_ms=START_MS + 12 * DAY_MS)
    header, _ = record(keyrings["cam-01"], "cam-01", START_MS + DAY_MS + HOUR_MS)  # day 1: destroyed
    with pytest.raises(wr.NotCoveredError, match="does not hold"):
        source.key_for(header)


@pytest.mark.parametrize("text, tz, expected", [
    ("2026-12-03T10:00:00Z", None, START_MS + 10 * HOUR_MS),
    ("2026-12-03T11:00:00+01:00", None, START_MS + 10 * HOUR_MS),
    ("2026-12-03T11:00", "Europe/Brussels", START_MS + 10 * HOUR_MS),
    ("2026-12-03", "Asia/Kolkata", START_MS - 330 * 60_000),
    ("2026-12-03", "UTC", START_MS),
])
def test_times_with_offsets_and_zones(text, tz, expected):
    assert wr.parse_time(text, auth.resolve_tz(tz) if tz else None, "--from") == expected


@pytest.mark.parametrize("start, end, message", [
    ("2026-12-03T11:00", "2026-12-03T12:00", "give an offset"),
    ("2026-12-03", "2026-12-04", "needs --tz"),
    ("yesterday", "2026-12-04T00:00Z", "not an ISO 8601"),
    ("2026-12-04T00:00Z", "2026-12-03T00:00Z", "must be after"),
])
def test_bad_windows_are_one_line(start, end, message):
    with pytest.raises(SnapsealError, match=message):
        wr.parse_window(start, end)


# ---------------------------------------------------------------- the commands


def cli(*args):
    return main([str(a) for a in args])


def test_cli_issue_show_and_the_bad_inputs(setup, capsys):
    root, authority, shares, _ = setup
    base = ["warrant", "issue", "--dir", root / "auth", "--camera", "cam-01", "--from", "2026-12-04T10:00Z",
            "--to", "2026-12-04T14:00Z", "--reference", "Court 7/2026"]
    before = snapshot(root)
    # fewer than k shares: nothing rebuilt, nothing written
    assert cli(*base, "--share", shares[0], "--out", root / "w.warrant") == 2
    err = capsys.readouterr().err
    assert err.startswith("snapseal: error: shares: cannot rebuild") and len(err.strip().splitlines()) == 1
    # a share from another secret
    auth.init_authority(root / "other", 2, 3, root / "other-shares")
    before = snapshot(root)
    other = sorted((root / "other-shares").glob("share-*"))
    assert cli(*base, "--share", shares[0], "--share", other[1], "--out", root / "w.warrant") == 2
    err = capsys.readouterr().err
    assert "belongs to authority" in err and len(err.strip().splitlines()) == 1
    # another camera
    bad_camera = [a if a != "cam-01" else "cam-77" for a in base]
    assert cli(*bad_camera, "--share", shares[0], "--share", shares[2], "--out", root / "w.warrant") == 2
    assert "never issued it a keyring" in capsys.readouterr().err
    assert snapshot(root) == before
    # and the good one
    assert cli(*base, "--share", shares[0], "--share", shares[2], "--out", root / "w.warrant") == 0
    out = capsys.readouterr().out
    assert "1 period key(s)" in out
    assert cli("warrant", "show", root / "w.warrant", "--authority", root / "auth" / "authority.pub") == 0
    shown = capsys.readouterr().out
    assert "cam-01  2026-12-04T00:00:00Z to 2026-12-05T00:00:00Z" in shown
    assert cli("log", "verify", root / "auth" / "opening.log") == 0
    # the same --out again: refused, the first warrant untouched
    first = (root / "w.warrant").read_bytes()
    assert cli(*base, "--share", shares[0], "--share", shares[2], "--out", root / "w.warrant") == 2
    assert (root / "w.warrant").read_bytes() == first


def test_cli_shares_piped_on_stdin(setup, capsys, monkeypatch):
    import io

    from snapseal.investigator import custody

    root, authority, shares, _ = setup
    text = "\n".join(custody.read_share_file(p)[0] for p in shares[1:]) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert cli("warrant", "issue", "--dir", root / "auth", "--camera", "cam-02", "--from", "2026-12-04",
               "--to", "2026-12-06", "--tz", "UTC", "--reference", "Case 9", "--out", root / "w2.warrant") == 0
    assert "2 period key(s)" in capsys.readouterr().out


def test_a_garbled_log_stops_the_opening_in_one_line(setup):
    root, authority, shares, keyrings = setup
    issue(authority, shares, root / "w.warrant")
    (root / "i.log").write_bytes(b"{garbage\n")
    source = wr.open_warrant(root / "w.warrant", root / "i.log", at_ms=START_MS + 3 * DAY_MS)
    header, _ = record(keyrings["cam-01"], "cam-01", START_MS + DAY_MS + 11 * HOUR_MS)
    with pytest.raises(SnapsealError, match="garbled") as caught:
        source.on_opened(Opened(header, "cam-01"))
    assert "\n" not in str(caught.value) and (root / "i.log").read_bytes() == b"{garbage\n"


def test_a_warrant_stops_opening_a_period_once_its_records_expired(setup):
    root, authority, shares, keyrings = setup
    warrant, _ = issue(authority, shares, root / "w.warrant", valid_days=300)
    (period,) = warrant.periods.values()
    assert period.expires_ms == START_MS + 2 * DAY_MS + 10 * DAY_MS  # day 1 ends, plus 10 days' retention
    assert warrant.valid_until_ms == period.expires_ms  # capped: no use once its records are gone
    header, _ = record(keyrings["cam-01"], "cam-01", START_MS + DAY_MS + 11 * HOUR_MS)
    wr.open_warrant(root / "w.warrant", root / "i.log", at_ms=period.expires_ms - 1).key_for(header)
    source = wr.WarrantKeySource(warrant, authority.log, "x", clock=lambda: period.expires_ms)
    with pytest.raises(wr.NotCoveredError, match="expired"):
        source.key_for(header)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_re_signed_warrant_with_any_field_changed_loads_or_is_one_line(setup, data):
    """Even content the authority signed is checked for shape: never a traceback."""
    root, authority, shares, keyrings = setup
    path = root / "fuzz.warrant"
    if not path.exists():
        issue(authority, shares, path)
    document = json.loads(path.read_text())
    public = document["warrant"]
    where = data.draw(st.sampled_from(list(json_paths(public))[1:]), label="path")
    set_at(public, where, data.draw(json_values, label="value"))
    with authority.unlock_files(shares[:2]) as secret:
        try:
            document["signature"] = wr.b64(secret.signing_key.sign(wr._signed(public)).signature)
        except ValueError:  # NaN: not JSON, no signer could have produced it; the file still must not crash us
            document["signature"] = wr.b64(bytes(64))
    mutated = root / "mutated.warrant"
    mutated.write_text(json.dumps(document))
    os.chmod(mutated, 0o600)
    try:
        source = wr.open_warrant(mutated, root / "fuzz.log", at_ms=START_MS + 3 * DAY_MS)
    except SnapsealError as error:
        assert "\n" not in str(error)
        return
    header, _ = record(keyrings["cam-01"], "cam-01", START_MS + DAY_MS + 11 * HOUR_MS)
    try:
        source.key_for(header)
        source.on_opened(Opened(header, "cam-01"))
    except SnapsealError as error:
        assert "\n" not in str(error)
