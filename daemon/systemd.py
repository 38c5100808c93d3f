"""The daemon under systemd, without libsystemd: notify datagrams and the stop signals.

- ``READY=1`` once the source is open and the models are loaded, ``WATCHDOG=1`` every half of
  ``WATCHDOG_USEC``, ``STATUS=...`` about every 10 s, ``STOPPING=1`` on shutdown: datagrams
  written straight to ``$NOTIFY_SOCKET`` with the socket module.
- SIGTERM / SIGINT set a stop event: capture stops, queued crops are scored, the best crop of
  every open track that met the minimum length is sealed, then the run returns (exit 0).
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

    def tick(self, status: Callable[[], str]) -> None:
        """Called from the processing loop: a hung loop stops the pings, and systemd restarts us."""
        now = self._clock()
        if self.watchdog_interval_s is not None and now >= self._next_watchdog:
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
