"""Stage markers for the instruction-counting plugin (eval/board/insn_buckets.c).

``with stage("detect"): ...`` tells the plugin that the guest's instructions from now on belong
to bucket "detect", and gives the enclosing bucket back on exit. A marker is the system call
``lseek(-7777, bucket, SEEK_SET)``: it fails with EBADF and changes nothing. Outside qemu (or
without the plugin) markers are harmless no-ops, so the same code runs anywhere.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

MARK_FD = -7777
# bucket number -> name; 0 collects everything outside a marked stage (start-up, imports)
BUCKETS = ("other", "capture", "detect", "pnet", "rnet", "onet", "track", "crop", "score", "accel", "choose", "seal",
           "fpga_io")
_NUMBER = {name: number for number, name in enumerate(BUCKETS)}
_stack: list[int] = [0]


def mark(number: int) -> None:
    try:
        os.lseek(MARK_FD, number, os.SEEK_SET)
    except OSError:
        pass


@contextmanager
def stage(name: str):
    number = _NUMBER[name]
    _stack.append(number)
    mark(number)
    try:
        yield
    finally:
        _stack.pop()
        mark(_stack[-1])


def wrap(obj, attribute: str, name: str) -> bool:
    """Replace ``obj.attribute`` (a callable) by one that runs inside ``stage(name)``."""
    inner = getattr(obj, attribute, None)
    if inner is None or not callable(inner):
        return False

    def staged(*args, **kwargs):
        with stage(name):
            return inner(*args, **kwargs)

    setattr(obj, attribute, staged)
    return True
