"""The ``snapseal`` command: one subcommand per module in ``COMMAND_MODULES``.

Each module defines ``register(subparsers)`` which adds its subparser(s) and sets
``func=callable(args) -> int`` as the default. Errors meant for the user are ``SnapsealError``
and come out as a single line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from snapseal.daemon.errors import SnapsealError

# Add a module here when it adds a subcommand; keep the list sorted.
COMMAND_MODULES: tuple[str, ...] = (
    "config",
    "keys",
    "records",
    "run",
    "score",
    "selftest",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapseal",
        description="Keep one sealed, best-quality face crop per person; open it only with the investigator's key.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"snapseal.daemon.cli.{module_name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SnapsealError as error:
        print(f"snapseal: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `snapseal ls | head`: the reader left; not an error worth a traceback. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
