"""The camera's subcommands, one module each (config, keys, records, run, score, selftest).

The ``snapseal`` command itself (snapseal/cli.py) registers these and, where installed, the
investigator's (investigator/cli.py). ``main`` is kept here so ``python -m snapseal.daemon.cli``
works as before.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from snapseal.cli import main as snapseal_main

    return snapseal_main(argv)


if __name__ == "__main__":
    sys.exit(main())
