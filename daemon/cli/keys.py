"""`snapseal keygen` and `snapseal key info`: key pairs (`key split|combine` is investigator/cli.py).

    snapseal keygen --out DIR [--force]            DIR/investigator.pub + DIR/investigator.key (0600)
    snapseal keygen --device --out DIR [--force]   DIR/device.pub + DIR/device.key (0600)
    snapseal keygen --device --out DIR --trusted-by KEYDIR [--label NAME]
                                                   ... and trust it: KEYDIR/trusted-devices.json
    snapseal trust add DEVICE.pub... --key investigator.key | --trust-file FILE
    snapseal trust ls --key investigator.key | --trust-file FILE
    snapseal key info KEY_FILE...                  type and key id of key files
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snapseal.daemon import keys
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.records.layout import printable


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
    if args.device and args.trusted_by is not None:
        trust_file = args.trusted_by / keys.TRUST_FILE_NAME
        keys.add_trusted_device(trust_file, pair.public, label=args.label or "")
        print(f"  trusted by the investigator: added to {trust_file}")
    return 0


def _trust_file_of(args: argparse.Namespace) -> Path:
    if args.trust_file is not None:
        return args.trust_file
    if args.key is not None:
        return keys.trust_file_beside(args.key)
    raise SnapsealError("give --key investigator.key (its trust file is beside it) or --trust-file FILE")


def _trust_add(args: argparse.Namespace) -> int:
    trust_file = _trust_file_of(args)
    for path in args.devices:
        device = keys.load_device_public(path)
        added = keys.add_trusted_device(trust_file, device, label=args.label or "")
        print(f"{'added' if added else 'already trusted'}: device {device.key_id} ({path}) in {trust_file}")
    return 0


def _trust_ls(args: argparse.Namespace) -> int:
    trust_file = _trust_file_of(args)
    entries = keys.load_trust_file(trust_file)
    for key, label in entries:
        print(f"{key.key_id}  {printable(label)}")
    print(f"{len(entries)} trusted device(s) in {trust_file}")
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
    keygen.add_argument("--trusted-by", dest="trusted_by", type=Path, metavar="KEYDIR",
                        help="with --device: add the new device key to KEYDIR/trusted-devices.json (the "
                             "investigator's trust file, beside investigator.key)")
    keygen.add_argument("--label", help="with --trusted-by: a name for the camera in the trust file")
    keygen.set_defaults(func=_keygen)

    trust = subparsers.add_parser("trust", help="the investigator's trusted device keys (trusted-devices.json)",
                                  description="Which cameras' records `snapseal open` accepts: the trust file "
                                              "beside the investigator key.")
    trust_actions = trust.add_subparsers(dest="trust_command", metavar="ACTION", required=True)
    for name, func, text in (("add", _trust_add, "add device public keys"), ("ls", _trust_ls, "list trusted devices")):
        action = trust_actions.add_parser(name, help=text)
        if name == "add":
            action.add_argument("devices", nargs="+", type=Path, metavar="DEVICE.pub")
            action.add_argument("--label", help="a name for the camera")
        action.add_argument("--key", type=Path, metavar="KEY", help="investigator key; the trust file is beside it")
        action.add_argument("--trust-file", dest="trust_file", type=Path, metavar="FILE", help="the trust file itself")
        action.set_defaults(func=func)

    key = subparsers.add_parser("key", help="key info; split / combine the investigator key (SLIP-39 k-of-n)",
                                description="Key files and the custody of the investigator private key.")
    actions = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    KEY_ACTIONS[id(subparsers)] = actions

    info = actions.add_parser("info", help="print the type and key id of key files")
    info.add_argument("files", nargs="+", type=Path, metavar="KEY_FILE")
    info.set_defaults(func=_info)
