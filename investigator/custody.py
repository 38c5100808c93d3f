"""Key custody: split the investigator's private key k-of-n into SLIP-39 mnemonic shares.

No single person need hold the key that opens records: ``snapseal key split --key
investigator.key -k 2 -n 3 --out shares/`` writes ``shares/share-1-of-3.txt`` ... (0600, one
per custodian); any 2 of them rebuild it with ``snapseal key combine shares/share-1-of-3.txt
shares/share-3-of-3.txt --out investigator.key``.

A share file is the SLIP-39 mnemonic (``shamir-mnemonic``, one group, member threshold k) after
comment lines naming the key id, so a custodian can tell which key a share belongs to and
``combine`` can check that the rebuilt key is the right one (a SLIP-39 passphrase that differs
from the one used to split silently yields a different key; the key-id check catches it)::

    # snapseal investigator key share 1 of 3; any 2 shares rebuild the key
    # key_id: 3f9a0c1b2d4e5f60
    academic acid acrobat ... (33 words for a 32-byte key)

API: ``split_key(pair, threshold, count, passphrase=b"") -> list[str]``,
``combine_shares(mnemonics, passphrase=b"") -> InvestigatorKeyPair``,
``write_shares(pair, threshold, count, out_dir, force=False, passphrase=b"") -> list[Path]``,
``read_share_file(path) -> (mnemonic, key_id | None)``,
``combine_share_files(paths, passphrase=b"") -> InvestigatorKeyPair``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import shamir_mnemonic

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.files import write_file_atomically
from snapseal.daemon.keys import InvestigatorKeyPair

MAX_SHARES = 16  # SLIP-39's limit on members of a group
KEY_ID_PREFIX = "# key_id:"


def split_key(pair: InvestigatorKeyPair, threshold: int, count: int, passphrase: bytes = b"") -> list[str]:
    """``count`` SLIP-39 mnemonics; any ``threshold`` of them rebuild the private key."""
    if not 1 <= threshold <= count <= MAX_SHARES:
        raise SnapsealError(f"shares: need 1 <= k <= n <= {MAX_SHARES}, got k={threshold}, n={count}")
    if threshold == 1 and count > 1:
        # SLIP-39 forbids 1-of-n (it would just be n copies of the key): say so in our words.
        raise SnapsealError(f"shares: 1-of-{count} is n plain copies of the key; SLIP-39 refuses it (use k >= 2)")
    (group,) = shamir_mnemonic.generate_mnemonics(group_threshold=1, groups=[(threshold, count)],
                                                  master_secret=pair.private_bytes, passphrase=passphrase)
    return list(group)


def combine_shares(mnemonics: Iterable[str], passphrase: bytes = b"") -> InvestigatorKeyPair:
    try:
        secret = shamir_mnemonic.combine_mnemonics([" ".join(m.split()) for m in mnemonics], passphrase=passphrase)
    except shamir_mnemonic.MnemonicError as error:
        raise SnapsealError(f"shares: cannot combine: {error}") from None
    if len(secret) != 32:
        raise SnapsealError(f"shares: they hold a {len(secret)}-byte secret, not an investigator key")
    return InvestigatorKeyPair.from_private_bytes(secret)


def share_file_name(index: int, count: int) -> str:
    return f"share-{index}-of-{count}.txt"


def write_shares(pair: InvestigatorKeyPair, threshold: int, count: int, out_dir: Path | str,
                 force: bool = False, passphrase: bytes = b"") -> list[Path]:
    """Write ``out_dir/share-<i>-of-<n>.txt`` (0600); refuse to overwrite unless ``force``."""
    out_dir = Path(out_dir)
    mnemonics = split_key(pair, threshold, count, passphrase)
    targets = [out_dir / share_file_name(i + 1, count) for i in range(count)]
    if not force:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise SnapsealError(f"{existing[0]}: exists; refusing to overwrite a share (use --force)")
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise SnapsealError(f"{out_dir}: cannot create: {error.strerror or error}") from None
    written = []
    for index, (target, mnemonic) in enumerate(zip(targets, mnemonics), start=1):
        text = (f"# snapseal investigator key share {index} of {count}; any {threshold} shares rebuild the key\n"
                f"{KEY_ID_PREFIX} {pair.key_id}\n{mnemonic}\n")
        try:
            written.append(write_file_atomically(target, text.encode("utf-8"), mode=0o600, overwrite=force))
        except OSError as error:
            raise SnapsealError(f"{target}: cannot write share: {error.strerror or error}") from None
    return written


def read_share_file(path: Path | str) -> tuple[str, str | None]:
    """(mnemonic, key id from the comment or None). Comment lines start with '#'."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapsealError(f"{path}: share file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SnapsealError(f"{path}: cannot read share file: {getattr(error, 'strerror', None) or error}") from None
    key_id = None
    words: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(KEY_ID_PREFIX):
            key_id = stripped[len(KEY_ID_PREFIX):].strip()
        elif stripped and not stripped.startswith("#"):
            words.extend(stripped.split())
    if not words:
        raise SnapsealError(f"{path}: no mnemonic words in share file")
    mnemonic = " ".join(words)
    try:
        shamir_mnemonic.share.Share.from_mnemonic(mnemonic)
    except shamir_mnemonic.MnemonicError as error:
        raise SnapsealError(f"{path}: not a valid SLIP-39 share: {error}") from None
    return mnemonic, key_id


def combine_share_files(paths: Sequence[Path | str], passphrase: bytes = b"") -> InvestigatorKeyPair:
    """Rebuild the key from share files; checks it against the key id the shares name."""
    shares = [read_share_file(path) for path in paths]
    stated_ids = {key_id for _, key_id in shares if key_id}
    if len(stated_ids) > 1:
        raise SnapsealError(f"shares belong to different keys: {', '.join(sorted(stated_ids))}")
    pair = combine_shares([mnemonic for mnemonic, _ in shares], passphrase)
    if stated_ids and pair.key_id not in stated_ids:
        raise SnapsealError(f"shares rebuilt key {pair.key_id}, but they name key {stated_ids.pop()} "
                            f"(wrong passphrase?)")
    return pair
