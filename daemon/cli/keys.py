"""`snapseal keygen` and `snapseal key info`: key pairs (`key split|combine` is investigator/cli.py).

    snapseal keygen --out DIR [--force]            DIR/investigator.pub + DIR/investigator.key (0600)
    snapseal keygen --device --out DIR [--force]   DIR/device.pub + DIR/device.key (0600)
    snapseal key info KEY_FILE...                  type and key id of key files
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snapseal.daemon import keys


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


def _info(args: argparse.Namespace) -> int:
    for path in args.files:
        kind, key_id = keys.describe_key_file(path)
        print(f"{path}: {kind} key_id {key_id}")
    return 0


# The `key` group's sub-actions per top-level parser, so investigator/cli.py can add its own.
KEY_ACTIONS: dict[int, argparse._SubParsersAction] = {}


def register(subparsers: argparse._SubParsersAction) -> None:
    keygen = subparsers.add_parser("keygen", help="make an investigator (default) or device key pair",
                                   description="Write DIR/investigator.pub + DIR/investigator.key, or with "
                                               "--device DIR/device.pub + DIR/device.key (private files 0600).")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the two key files")
    keygen.add_argument("--device", action="store_true", help="make the camera's Ed25519 signing key pair")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.set_defaults(func=_keygen)

    key = subparsers.add_parser("key", help="key info; split / combine the investigator key (SLIP-39 k-of-n)",
                                description="Key files and the custody of the investigator private key.")
    actions = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    KEY_ACTIONS[id(subparsers)] = actions

    info = actions.add_parser("info", help="print the type and key id of key files")
    info.add_argument("files", nargs="+", type=Path, metavar="KEY_FILE")
    info.set_defaults(func=_info)
