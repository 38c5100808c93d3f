"""The ``snapseal`` command: the camera's subcommands (daemon/cli/) and, where the investigator's
tools are installed, theirs (investigator/). Each command module defines ``register(subparsers)``,
which adds its subparser(s) with ``func=callable(args) -> int``. Errors meant for the user are
``SnapsealError`` and come out as one line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from snapseal.daemon.errors import SnapsealError

# The camera's commands (run, score, selftest, config, keygen, ls, verify, purge).
DAEMON_COMMANDS: tuple[str, ...] = (
    "snapseal.daemon.cli.config",
    "snapseal.daemon.cli.keys",
    "snapseal.daemon.cli.records",
    "snapseal.daemon.cli.run",
    "snapseal.daemon.cli.score",
    "snapseal.daemon.cli.selftest",
)
# Commands that use an investigator's or trustee's secret: never needed on a camera.
INVESTIGATOR_COMMANDS: tuple[str, ...] = (
    "snapseal.investigator.cli",
    "snapseal.investigator.cli_warrant",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapseal",
        description="Keep one sealed, best-quality face crop per person; open it only with the investigator's key.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in DAEMON_COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    for module_name in INVESTIGATOR_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            if missing.name is not None and module_name.startswith(missing.name):
                continue  # not installed here (a camera): the camera's commands still work
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


def run_command(args: argparse.Namespace) -> int:
    """Call ``args.func(args)``: a ``SnapsealError`` becomes one line and exit 2 (every snapseal
    command-line tool ends through here)."""
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
