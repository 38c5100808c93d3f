"""``snapseal config``: print the documented config file, or check one.

    snapseal config --defaults        every key with its default, rule and description (TOML)
    snapseal config --check FILE      validate FILE as the daemon would at start
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from snapseal.daemon.config import example_toml, load_config

    if args.check is not None:
        load_config(args.check)
        print(f"{args.check}: ok")
        return 0
    print(example_toml(), end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="print the documented config file (--defaults) or check one",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--defaults", action="store_true", help="print every key with its default and description")
    group.add_argument("--check", type=Path, metavar="FILE", help="validate a config file")
    parser.set_defaults(func=run)
