"""The authority (investigator/authority.py): k-of-n secret, per-(camera, period) random keys in a
vault, keyrings a camera accepts, and key destruction at expiry that nobody can undo."""

from __future__ import annotations

import itertools
import json
import stat
from datetime import date, datetime, timezone

import nacl.exceptions
import nacl.public
import pytest

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.keyring import load_keyring, parse_keyring, unb64
from snapseal.investigator import authority as auth
from snapseal.investigator import custody
from snapseal.investigator.opening_log import read_entries, verify_log

DAY_MS = 86_400_000
START = date(2026, 12, 3)
START_MS = 1_796_256_000_000  # 2026-12-03T00:00:00Z


def make_authority(root, k=2, n=3):
    public, share_paths = auth.init_authority(root / "auth", k, n, root / "shares", who="test")
    return auth.Authority(root / "auth"), share_paths


@pytest.fixture
def authority(tmp_path):
    return make_authority(tmp_path)


def mnemonics(paths):
    return [custody.read_share_file(p)[0] for p in paths]


def test_init_writes_public_private_and_a_log_and_refuses_to_run_twice(tmp_path, authority):
    the_authority, shares = authority
    root = tmp_path / "auth"
    assert stat.S_IMODE((root / auth.CUSTODIAN_KEY_NAME).stat().st_mode) == 0o600
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in shares) and len(shares) == 3
    assert stat.S_IMODE((root / auth.VAULT_DIR).stat().st_mode) == 0o700
    public_text = (root / auth.AUTHORITY_PUB_NAME).read_text()
    for share in mnemonics(shares):  # the public file holds no share and no secret
        assert share.split()[5] not in public_text.split('"')
    check = verify_log(the_authority.log.path, the_authority.public.sign_key)
    assert check.ok and check.entries == 1
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(SnapsealError, match="made once"):
        auth.init_authority(root, 2, 3, tmp_path / "shares2")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "shares2").exists()


@pytest.mark.parametrize("k, n", [(1, 3), (3, 2), (2, 17), (0, 0)])
def test_bad_thresholds_are_one_line_and_write_nothing(tmp_path, k, n):
    with pytest.raises(SnapsealError) as caught:
        auth.init_authority(tmp_path / "auth", k, n, tmp_path / "shares")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "auth").exists() and not (tmp_path / "shares").exists()


def test_any_k_shares_unlock_fewer_open_nothing(authority):
    the_authority, shares = authority
    words = mnemonics(shares)
    for chosen in itertools.permutations(words, 2):
        with the_authority.unlock(chosen) as secret:
            assert secret.authority_id == the_authority.public.authority_id
    for single in words:
        with pytest.raises(SnapsealError) as caught:
            the_authority.unlock([single])
        assert "cannot rebuild" in str(caught.value) and "\n" not in str(caught.value)


def test_a_share_from_another_secret_is_refused_in_one_line(tmp_path, authority):
    the_authority, shares = authority
    other, other_shares = make_authority(tmp_path / "other")
    mixed = [shares[0], other_shares[1]]
    with pytest.raises(SnapsealError) as caught:
        the_authority.unlock_files(mixed)
    assert "belongs to authority" in str(caught.value) and "\n" not in str(caught.value)
    # without the key-id comment the SLIP-39 layer itself refuses the mix
    with pytest.raises(SnapsealError, match="cannot rebuild"):
        the_authority.unlock(mnemonics(mixed))
    # a complete, valid set of another authority's shares rebuilds *its* secret: refused too
    with pytest.raises(SnapsealError, match="not this authority"):
        the_authority.unlock(mnemonics(other_shares[:2]))


def test_wiped_secret_derives_nothing(authority):
    the_authority, shares = authority
    secret = the_authority.unlock_files(shares[:2])
    secret.wipe()
    with pytest.raises(SnapsealError, match="wiped"):
        _ = secret.signing_key


def test_utc_day_periods_and_local_days_with_daylight_saving():
    utc = auth.period_boundaries(START, 3, 86400, timezone.utc)
    assert utc == [START_MS + i * DAY_MS for i in range(4)]
    brussels = auth.resolve_tz("Europe/Brussels")
    spring = auth.period_boundaries(date(2026, 3, 28), 3, 86400, brussels)  # clocks go forward on 29 March
    lengths = [(b - a) / 3_600_000 for a, b in zip(spring, spring[1:])]
    assert lengths == [24, 23, 24]
    for bound in spring:
        local = datetime.fromtimestamp(bound / 1000, brussels)
        assert (local.hour, local.minute) == (0, 0)
    hourly = auth.period_boundaries(date(2026, 10, 25), 1, 3600, brussels)  # 25-hour day
    assert len(hourly) - 1 == 25
    kolkata = auth.period_boundaries(START, 1, 86400, auth.resolve_tz("Asia/Kolkata"))
    assert kolkata[0] == START_MS - 330 * 60_000  # local midnight is 18:30 UTC the day before


@pytest.mark.parametrize("period_s", [0, 59, 7 * 3600, 86400 + 3600])
def test_periods_must_divide_a_day_or_be_whole_days(period_s):
    with pytest.raises(SnapsealError, match="divide a day"):
        auth.period_boundaries(START, 2, period_s, timezone.utc)


def test_unknown_time_zone_is_one_line():
    with pytest.raises(SnapsealError, match="unknown time zone"):
        auth.resolve_tz("Mars/Olympus")


def issue(the_authority, shares, camera="cam-01", days=400, **kwargs):
    kwargs.setdefault("at_ms", START_MS)
    with the_authority.unlock_files(shares[:2]) as secret:
        return auth.issue_keyring(the_authority, secret, camera, days=days, start_day=kwargs.pop("start_day", START),
                                  **kwargs)


def test_a_keyring_for_400_days_holds_public_keys_only_and_the_camera_accepts_it(tmp_path, authority):
    the_authority, shares = authority
    issued = issue(the_authority, shares)
    assert issued.periods == 400 and issued.new_keys == 400
    path = tmp_path / "keyring.json"
    path.write_bytes(issued.blob)
    keyring = load_keyring(path, "cam-01", tmp_path / "auth" / auth.AUTHORITY_PUB_NAME, now_s=START_MS / 1000)
    assert len(keyring.periods) == 400 and keyring.start_ms == START_MS and keyring.end_ms == START_MS + 400 * DAY_MS
    entries = the_authority.read_vault("cam-01")
    assert [e.public for e in entries] == [p.public.public_bytes for p in keyring.periods]
    # nothing in the keyring opens anything: it holds the public keys and the signature only
    document = json.loads(issued.blob)
    assert set(document) == {"snapseal_keyring", "camera_id", "keyring_id", "issued_ms", "authority_key", "periods",
                             "end_ms", "signature"}
    sealed = {e.sealed for e in entries}
    assert all(s not in issued.blob for s in sealed)
    assert stat.S_IMODE(the_authority.vault_path("cam-01").stat().st_mode) == 0o600
    kinds = [e["kind"] for e in read_entries(the_authority.log.path)]
    assert kinds == ["log-created", "keyring-issued"]


def test_reissuing_extends_with_the_same_keys_and_a_different_grid_is_refused(authority):
    the_authority, shares = authority
    first = parse_keyring(issue(the_authority, shares, days=10).blob)
    again = issue(the_authority, shares, days=20)
    assert again.new_keys == 10
    second = parse_keyring(again.blob)
    assert [p.key_id for p in second.periods[:10]] == [p.key_id for p in first.periods]
    with pytest.raises(SnapsealError, match="same period length"):
        issue(the_authority, shares, days=5, period_s=3600)
    with pytest.raises(SnapsealError, match="same period length"):
        issue(the_authority, shares, days=5, tz_name="Europe/Brussels")


def test_bad_camera_ids_are_refused_before_anything_is_written(authority):
    the_authority, shares = authority
    for bad in ("../x", "", ".hidden", "a/b", "x" * 65):
        with pytest.raises(SnapsealError, match="camera id"):
            issue(the_authority, shares, camera=bad, days=2)
    assert the_authority.cameras() == []


def test_expiry_destroys_the_keys_no_one_can_open_those_periods_any_more(authority):
    the_authority, shares = authority
    issue(the_authority, shares, days=5, retention_days=2)
    entries = the_authority.read_vault("cam-01")
    # a record of day 0, sealed to its period key
    box = nacl.public.SealedBox(nacl.public.PublicKey(entries[0].public)).encrypt(b"face")
    sealed_day0 = entries[0].sealed
    # day 0 ends at START+1d; its records expire 2 days later: one ms before, nothing goes
    assert auth.expire_keys(the_authority, at_ms=START_MS + 3 * DAY_MS - 1) == []
    gone = auth.expire_keys(the_authority, at_ms=START_MS + 3 * DAY_MS)
    assert [d.start_ms for d in gone] == [START_MS]
    vault_bytes = the_authority.vault_path("cam-01").read_bytes()
    assert auth.b64(sealed_day0).encode() not in vault_bytes
    after = the_authority.read_vault("cam-01")
    assert after[0].sealed is None and after[0].destroyed_ms == START_MS + 3 * DAY_MS
    # all trustees together: every share, the secret rebuilt, every vault entry tried
    with the_authority.unlock_files(shares) as secret:
        with pytest.raises(SnapsealError, match="destroyed at expiry"):
            the_authority.unseal(secret, after[0], "cam-01")
        for entry in after[1:]:
            private = the_authority.unseal(secret, entry, "cam-01")
            with pytest.raises(nacl.exceptions.CryptoError):
                nacl.public.SealedBox(private).decrypt(box)
        with pytest.raises(SnapsealError, match="destroyed at expiry"):
            auth.issue_keyring(the_authority, secret, "cam-01", days=2, start_day=START, at_ms=START_MS)
    log = read_entries(the_authority.log.path)
    assert log[-1]["kind"] == "keys-destroyed" and log[-1]["detail"]["key_ids"] == [entries[0].key_id]
    assert verify_log(the_authority.log.path, the_authority.public.sign_key).ok


def test_revoking_a_camera_destroys_its_keys_before_a_time_without_shares(authority):
    the_authority, shares = authority
    issue(the_authority, shares, camera="cam-01", days=5)
    issue(the_authority, shares, camera="cam-02", days=5)
    gone = auth.expire_keys(the_authority, at_ms=START_MS, camera_ids=["cam-01"], before_ms=START_MS + 2 * DAY_MS)
    assert {d.camera_id for d in gone} == {"cam-01"} and [d.start_ms for d in gone] == [START_MS, START_MS + DAY_MS]
    # stolen at noon on day 3: that day's key and every later one go, days 0-1 already went, day 2 stays
    noon = START_MS + 3 * DAY_MS + DAY_MS // 2
    gone = auth.expire_keys(the_authority, at_ms=noon, camera_ids=["cam-01"], from_ms=noon)
    assert [d.start_ms for d in gone] == [START_MS + 3 * DAY_MS, START_MS + 4 * DAY_MS]
    assert [e.sealed is None for e in the_authority.read_vault("cam-01")] == [True, True, False, True, True]
    assert sum(e.sealed is None for e in the_authority.read_vault("cam-02")) == 0
    with pytest.raises(SnapsealError, match="needs the cameras named"):
        auth.expire_keys(the_authority, from_ms=noon)


def test_an_edited_vault_entry_is_caught_when_unsealed(authority):
    the_authority, shares = authority
    issue(the_authority, shares, days=2)
    path = the_authority.vault_path("cam-01")
    document = json.loads(path.read_text())
    document["periods"][0]["sealed"], document["periods"][1]["sealed"] = (document["periods"][1]["sealed"],
                                                                            document["periods"][0]["sealed"])
    path.write_text(json.dumps(document))
    entries = the_authority.read_vault("cam-01")
    with the_authority.unlock_files(shares[:2]) as secret:
        with pytest.raises(SnapsealError, match="wrong private key"):
            the_authority.unseal(secret, entries[0], "cam-01")
    assert unb64(document["periods"][0]["public"], 32, "public") == entries[0].public


def test_a_key_pair_slipped_into_the_vault_is_never_handed_to_a_camera_or_a_warrant(tmp_path, authority):
    """The vault's public key is public: anyone who can write the vault can seal a private key of
    their own to it. Every entry is signed by the authority, so such an entry is refused."""
    the_authority, shares = authority
    issue(the_authority, shares, days=3)
    path = the_authority.vault_path("cam-01")
    document = json.loads(path.read_text())
    mine = nacl.public.PrivateKey.generate()
    row = document["periods"][1]
    row["public"] = auth.b64(bytes(mine.public_key))
    row["key_id"] = auth.key_id_of(bytes(mine.public_key))
    row["sealed"] = auth.b64(nacl.public.SealedBox(nacl.public.PublicKey(the_authority.public.vault_key))
                             .encrypt(bytes(mine)))
    path.write_text(json.dumps(document))
    with pytest.raises(SnapsealError, match="not signed by this authority"):
        issue(the_authority, shares, days=3)
    from snapseal.investigator import warrant as wr

    with the_authority.unlock_files(shares[:2]) as secret:
        with pytest.raises(SnapsealError, match="not signed by this authority"):
            wr.issue_warrant(the_authority, secret, ["cam-01"], START_MS, START_MS + 3 * DAY_MS, "x",
                             tmp_path / "w.warrant", at_ms=START_MS)
    assert not (tmp_path / "w.warrant").exists()
