"""SLIP-39 k-of-n custody of the investigator key (investigator/custody.py, `snapseal key ...`)."""

from __future__ import annotations

import itertools
import os
import stat

import pytest

from snapseal.daemon import keys
from snapseal.investigator import custody
from snapseal.daemon.cli import main
from snapseal.daemon.errors import SnapsealError


def test_split_2_of_3_any_two_recombine_one_does_not():
    pair = keys.InvestigatorKeyPair.generate()
    shares = custody.split_key(pair, 2, 3)
    assert len(shares) == 3 and len(set(shares)) == 3
    for chosen in itertools.permutations(shares, 2):
        assert custody.combine_shares(chosen).private_bytes == pair.private_bytes
    for single in shares:
        with pytest.raises(SnapsealError, match="cannot combine"):
            custody.combine_shares([single])


def test_share_files_are_private_and_name_the_key(tmp_path):
    pair = keys.InvestigatorKeyPair.generate()
    paths = custody.write_shares(pair, 3, 5, tmp_path / "shares")
    assert [p.name for p in paths] == [f"share-{i}-of-5.txt" for i in range(1, 6)]
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        mnemonic, key_id = custody.read_share_file(path)
        assert key_id == pair.key_id and len(mnemonic.split()) == 33
    assert custody.combine_share_files([paths[4], paths[0], paths[2]]).key_id == pair.key_id
    with pytest.raises(SnapsealError, match="refusing to overwrite"):
        custody.write_shares(pair, 3, 5, tmp_path / "shares")


def test_bad_parameters_and_mixed_or_garbled_shares(tmp_path):
    pair, other = keys.InvestigatorKeyPair.generate(), keys.InvestigatorKeyPair.generate()
    with pytest.raises(SnapsealError, match="1-of-3"):
        custody.split_key(pair, 1, 3)
    with pytest.raises(SnapsealError, match="k <= n"):
        custody.split_key(pair, 4, 3)
    mine = custody.write_shares(pair, 2, 3, tmp_path / "a")
    theirs = custody.write_shares(other, 2, 3, tmp_path / "b")
    with pytest.raises(SnapsealError, match="different keys"):
        custody.combine_share_files([mine[0], theirs[1]])
    garbled = tmp_path / "garbled.txt"
    words = mine[0].read_text().split("\n")
    words[2] = " ".join(reversed(words[2].split()))
    garbled.write_text("\n".join(words))
    with pytest.raises(SnapsealError, match="garbled.txt: not a valid SLIP-39 share"):
        custody.read_share_file(garbled)


def test_wrong_passphrase_is_caught_by_the_key_id(tmp_path):
    pair = keys.InvestigatorKeyPair.generate()
    paths = custody.write_shares(pair, 2, 3, tmp_path, passphrase=b"correct horse")
    assert custody.combine_share_files(paths[:2], passphrase=b"correct horse").key_id == pair.key_id
    with pytest.raises(SnapsealError, match="wrong passphrase"):
        custody.combine_share_files(paths[:2])


def test_cli_split_and_combine(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 0
    original = keys.load_investigator_private(tmp_path / "k" / "investigator.key")
    assert main(["key", "split", "--key", str(tmp_path / "k" / "investigator.key"), "-k", "2", "-n", "3",
                 "--out", str(tmp_path / "shares")]) == 0
    shares = sorted((tmp_path / "shares").iterdir())
    assert len(shares) == 3
    out = tmp_path / "rebuilt" / "investigator.key"
    assert main(["key", "combine", str(shares[2]), str(shares[0]), "--out", str(out)]) == 0
    assert keys.load_investigator_private(out).private_bytes == original.private_bytes
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    capsys.readouterr()
    assert main(["key", "combine", str(shares[1]), "--out", str(tmp_path / "x.key")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("snapseal: error: shares: cannot combine") and error.count("\n") == 1
    assert main(["key", "combine", str(shares[1]), str(shares[2]), "--out", str(out)]) == 2  # exists
    assert main(["key", "info", str(out)]) == 0
    assert original.key_id in capsys.readouterr().out
