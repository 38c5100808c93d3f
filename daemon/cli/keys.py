"""`snapseal keygen` and `snapseal key split|combine|info`: key pairs and their custody.

    snapseal keygen --out DIR [--force]            DIR/investigator.pub + DIR/investigator.key (0600)
    snapseal keygen --device --out DIR [--force]   DIR/device.pub + DIR/device.key (0600)
    snapseal key split --key investigator.key -k 2 -n 3 --out SHARES_DIR [--force]
    snapseal key combine SHARE_FILE... --out investigator.key [--force]
    snapseal key info KEY_FILE...                  type and key id of key files
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snapseal.daemon import keys
from snapseal.investigator import custody


def _keygen(args: argparse.Namespace) -> int:
    if args.device:
        pair = keys.DeviceKeyPair.generate()
        pub_path, key_path = keys.save_device_keys(pair, args.out, force=args.force)
        role = "device signing key (stays on the camera)"
    else:
        pair = keys.InvestigatorKeyPair.generate()
        pub_path, key_path = keys.save_investigator_keys(pair, args.out, force=args.force)
        role = "investigator key (the private key must never be on a camera)"
    print(f"{role}: key id {pair.key_id}")
    print(f"  public:  {pub_path}")
    print(f"  private: {key_path} (0600)")
    return 0


def _split(args: argparse.Namespace) -> int:
    pair = keys.load_investigator_private(args.key)
    paths = custody.write_shares(pair, args.threshold, args.count, args.out, force=args.force)
    print(f"split investigator key {pair.key_id} into {args.count} SLIP-39 shares; any {args.threshold} rebuild it:")
    for path in paths:
        print(f"  {path}")
    print(f"give each share to a different custodian, then remove {args.key} from this machine")
    return 0


def _combine(args: argparse.Namespace) -> int:
    pair = custody.combine_share_files(args.shares)
    path = keys.save_investigator_private(pair, args.out, force=args.force)
    print(f"rebuilt investigator key {pair.key_id}: {path} (0600)")
    return 0


def _info(args: argparse.Namespace) -> int:
    for path in args.files:
        kind, key_id = keys.describe_key_file(path)
        print(f"{path}: {kind} key_id {key_id}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    keygen = subparsers.add_parser("keygen", help="make an investigator (default) or device key pair",
                                   description="Write DIR/investigator.pub + DIR/investigator.key, or with "
                                               "--device DIR/device.pub + DIR/device.key (private files 0600).")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the two key files")
    keygen.add_argument("--device", action="store_true", help="make the camera's Ed25519 signing key pair")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.set_defaults(func=_keygen)

    key = subparsers.add_parser("key", help="split / combine the investigator key (SLIP-39 k-of-n), key info",
                                description="Key custody: SLIP-39 shares of the investigator private key.")
    actions = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)

    split = actions.add_parser("split", help="split investigator.key into n shares, any k rebuild it")
    split.add_argument("--key", type=Path, required=True, metavar="FILE", help="investigator private key file")
    split.add_argument("-k", dest="threshold", type=int, required=True, help="shares needed to rebuild (>= 2)")
    split.add_argument("-n", dest="count", type=int, required=True, help="shares to make (<= 16)")
    split.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for share-<i>-of-<n>.txt")
    split.add_argument("--force", action="store_true", help="overwrite existing share files")
    split.set_defaults(func=_split)

    combine = actions.add_parser("combine", help="rebuild investigator.key from k share files")
    combine.add_argument("shares", nargs="+", type=Path, metavar="SHARE_FILE")
    combine.add_argument("--out", type=Path, required=True, metavar="FILE", help="investigator private key to write")
    combine.add_argument("--force", action="store_true", help="overwrite an existing key file")
    combine.set_defaults(func=_combine)

    info = actions.add_parser("info", help="print the type and key id of key files")
    info.add_argument("files", nargs="+", type=Path, metavar="KEY_FILE")
    info.set_defaults(func=_info)
