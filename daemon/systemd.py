"""The daemon under systemd, without libsystemd: notify datagrams and the stop signals.

- ``READY=1`` once the source is open and the models are loaded, ``WATCHDOG=1`` every half of
  ``WATCHDOG_USEC``, ``STATUS=...`` about every 10 s, ``STOPPING=1`` on shutdown: datagrams
  written straight to ``$NOTIFY_SOCKET`` with the socket module.
- SIGTERM / SIGINT set a stop event: capture stops, queued crops are scored, the best crop of
  every open track that met the minimum length is sealed, then the run returns (exit 0).
- The watchdog is pinged only while the pipeline makes progress (a frame since the last ping)
  or while it knowingly waits for a camera (STATUS then says so): a stalled stream that delivers
  nothing stops the pings and systemd restarts the service.
- ``harden_process()`` at start: not dumpable (no core file, no ptrace by other users' tools)
  and a core size limit of 0, wherever the daemon runs: a core would hold the device's signing
  seed and decodable face crops.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

log = logging.getLogger("snapseal.service")

STATUS_EVERY_S = 10.0


class SystemdNotifier:
    """sd_notify without libsystemd: datagrams to ``$NOTIFY_SOCKET`` (path or @abstract)."""

    def __init__(self, environ: dict[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        environ = dict(os.environ if environ is None else environ)
        self._clock = clock
        self.address: str | None = environ.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]  # Linux abstract namespace
        self.watchdog_interval_s: float | None = None
        usec = environ.get("WATCHDOG_USEC")
        pid = environ.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 1e6 / 2.0
        self._next_watchdog = 0.0
        self._next_status = 0.0
        self._progress_at_ping: int | None = -1
        self._socket: socket.socket | None = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, **fields: Any) -> bool:
        """Send ``KEY=value`` lines (READY=1, STATUS=...). False when not under systemd."""
        if self._socket is None or self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode("utf-8")
        try:
            self._socket.sendto(message, self.address)
            return True
        except OSError as error:
            log.warning("systemd notify failed: %s", error)
            return False

    def ready(self, status: str) -> None:
        self.notify(READY=1, STATUS=status)

    def tick(self, status: Callable[[], str], progress: int | None = None, waiting: bool = False) -> None:
        """Called from the processing loop: a hung loop stops the pings, and systemd restarts us.

        ``progress`` (e.g. frames processed): the watchdog is pinged only when it moved since the
        last ping, or while ``waiting`` (knowingly waiting for a camera); None pings regardless."""
        now = self._clock()
        progressing = progress is None or waiting or progress != self._progress_at_ping
        if self.watchdog_interval_s is not None and progressing and now >= self._next_watchdog:
            self._progress_at_ping = progress
            self.notify(WATCHDOG=1)
            self._next_watchdog = now + self.watchdog_interval_s
        if now >= self._next_status:
            self.notify(STATUS=status())
            # With a short watchdog the status follows it, so a supervisor sees fresh numbers.
            self._next_status = now + min(STATUS_EVERY_S, self.watchdog_interval_s or STATUS_EVERY_S)

    def stopping(self, status: str) -> None:
        self.notify(STOPPING=1, STATUS=status)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def harden_process() -> dict[str, Any]:
    """Make this process non-dumpable and set its core limit to 0; returns what was done (for a
    test and the start log). Best effort where the OS lacks prctl (not Linux): the rlimit still."""
    done: dict[str, Any] = {"dumpable": None, "core_limit": None}
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        done["core_limit"] = resource.getrlimit(resource.RLIMIT_CORE)
    except (ImportError, ValueError, OSError) as error:
        log.warning("cannot set the core size limit to 0: %s", error)
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
        done["dumpable"] = int(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
    except (OSError, AttributeError) as error:
        log.warning("cannot make the process non-dumpable: %s", error)
    return done


@contextmanager
def stop_on_signals(stop: threading.Event, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[threading.Event]:
    """SIGTERM/SIGINT set ``stop`` (the loop finishes its tracks and returns); handlers restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            log.warning("signal %d again: still sealing open tracks", signum)
        else:
            log.info("signal %d: stopping capture, sealing the best crop of every open track", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
