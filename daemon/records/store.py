"""The local spool of sealed records: one file ``<record-id>.snap`` per record.

API (for the pipeline)::

    store = RecordStore(directory, quota_bytes)   # creates the dir (0700), removes stray temp files
    path = store.write(record_bytes)              # atomic; raises StoreFullError / StoreWriteError
    deleted = store.purge_expired(now=None)       # -> list[StoredRecord]; now = store.clock()
    store.used_bytes, store.refused_records, store.written_records, store.removed_temp_files
    (thread-safe: write and purge_expired may be called from different threads)

    list_headers(directory) -> list[StoredRecord]      # headers only, no key, no decryption
    purge_expired(directory, now) -> list[StoredRecord] # what it deleted
    record_files(paths) -> list[Path]                   # *.snap files of dirs and files given

Writing: a temp file ``.snapseal-tmp-<pid>-<random>.part`` in the same directory (mode 0600),
write, fsync, rename to ``<record-id>.snap`` (never over an existing file), fsync the
directory. Any OSError (ENOSPC, EDQUOT, EIO...) removes the temp file and raises
``StoreWriteError`` (one line, ``.errno``, ``.retryable`` for ENOSPC/EDQUOT); the caller keeps
the record bytes and may retry. A crash can leave a temp file: ``RecordStore()`` removes those
whose writer process is gone (the pid is in the name). The store writes only bytes that parse
as a record header, so it can't be handed a plaintext image by mistake.

Quota policy: **refuse, never evict.** A record that would take the spool over ``quota_bytes``
first triggers a purge of expired records (they are due anyway); if it still doesn't fit, the
write raises ``StoreFullError`` and ``refused_records`` goes up. Evicting the oldest-expiring
record instead would silently destroy a sealed record before its retention ended; refusing is
loud, and the daemon decides (log it, keep the record in memory, retry after the next purge).
The quota counts the bytes of ``*.snap`` files.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.files import fsync_directory, write_file_atomically
from snapseal.daemon.records.layout import HEADER_SIZE, RECORD_SUFFIX, RecordError, RecordHeader, parse_header

TEMP_PREFIX = ".snapseal-tmp-"
TEMP_PATTERN = re.compile(r"^\.snapseal-tmp-(\d+)-[0-9a-f]+\.part$")
RETRYABLE_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)


class StoreFullError(SnapsealError):
    """The record would take the spool over its quota (after purging expired records)."""


class StoreWriteError(SnapsealError):
    """The filesystem refused the write; the temp file is gone and nothing was stored."""

    def __init__(self, message: str, errno_code: int | None):
        super().__init__(message)
        self.errno = errno_code
        self.retryable = errno_code in RETRYABLE_ERRNOS


@dataclass(frozen=True)
class StoredRecord:
    """A ``*.snap`` file as seen without any key: its header, or why it can't be read."""

    path: Path
    size: int
    header: RecordHeader | None
    error: str | None = None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stray_temp_files(directory: Path) -> list[Path]:
    """Remove temp files left by a crashed writer (its pid is gone, or is ours: pid reuse)."""
    removed = []
    for entry in os.scandir(directory):
        match = TEMP_PATTERN.match(entry.name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not _pid_alive(pid):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except FileNotFoundError:
                pass
    if removed:
        fsync_directory(directory)
    return removed


def record_files(paths: Iterable[Path | str]) -> list[Path]:
    """Directories expand to their ``*.snap`` files (sorted); files are taken as given."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.name.endswith(RECORD_SUFFIX) and p.is_file()))
        else:
            files.append(path)
    return files


def read_stored_header(path: Path) -> StoredRecord:
    """The header of one record file; problems go in ``.error`` (for listings), not raised."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(HEADER_SIZE)
    except OSError as error:
        return StoredRecord(path, 0, None, f"cannot read: {error.strerror or error}")
    try:
        header = parse_header(prefix, path)
    except RecordError as error:
        return StoredRecord(path, size, None, f"{error.reason}: {error.detail}")
    if size != header.record_length:
        return StoredRecord(path, size, header, f"corrupt: {size} bytes, the header says {header.record_length}")
    if path.name != header.file_name:
        return StoredRecord(path, size, header, f"corrupt: file name does not match record id {header.record_id}")
    return StoredRecord(path, size, header)


def list_headers(directory: Path | str) -> list[StoredRecord]:
    """Every ``*.snap`` in ``directory``, oldest first; unreadable ones last, with their error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SnapsealError(f"{directory}: not a directory of records")
    stored = [read_stored_header(path) for path in record_files([directory])]
    return sorted(stored, key=lambda s: (s.header is None, s.header.created_ms if s.header else 0, s.path.name))


def purge_expired(directory: Path | str, now: float) -> list[StoredRecord]:
    """Delete records whose header says they expired at or before ``now``; return them.

    Files whose header can't be read are left in place (their expiry is unknown); `snapseal ls`
    and `snapseal verify` report them.
    """
    directory = Path(directory)
    deleted = []
    for stored in list_headers(directory):
        if stored.header is not None and stored.header.is_expired(now):
            try:
                os.unlink(stored.path)
            except FileNotFoundError:
                continue  # someone else purged it first
            except OSError as error:
                raise SnapsealError(f"{stored.path}: cannot delete expired record: {error.strerror or error}") from None
            deleted.append(stored)
    if deleted:
        fsync_directory(directory)
    return deleted


def _used_bytes(directory: Path) -> int:
    total = 0
    for entry in os.scandir(directory):
        if entry.name.endswith(RECORD_SUFFIX):
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
    return total


@dataclass
class RecordStore:
    """The camera's spool directory with a byte quota (policy: refuse, never evict; see above)."""

    directory: Path
    quota_bytes: int
    clock: Callable[[], float] = field(default=time.time, repr=False)
    used_bytes: int = field(init=False, default=0)
    refused_records: int = field(init=False, default=0)
    written_records: int = field(init=False, default=0)
    removed_temp_files: list[Path] = field(init=False, default_factory=list)
    # write() and purge_expired() may run on different threads (sealing vs. a purge timer).
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if not self.quota_bytes > 0:
            raise SnapsealError(f"{self.directory}: store quota must be positive, got {self.quota_bytes}")
        self.quota_bytes = int(self.quota_bytes)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise SnapsealError(f"{self.directory}: cannot create the record store: {error.strerror or error}") from None
        if not self.directory.is_dir():
            raise SnapsealError(f"{self.directory}: not a directory (record store)")
        self.removed_temp_files = remove_stray_temp_files(self.directory)
        self.used_bytes = _used_bytes(self.directory)

    def write(self, record_bytes: bytes) -> Path:
        """Store one sealed record atomically; return its path."""
        with self._lock:
            return self._write_locked(record_bytes)

    def _write_locked(self, record_bytes: bytes) -> Path:
        header = parse_header(record_bytes, "record handed to the store")
        if len(record_bytes) != header.record_length:
            raise SnapsealError(f"record {header.record_id}: {len(record_bytes)} bytes, its header says "
                                f"{header.record_length}; refusing to store it")
        size = len(record_bytes)
        if self.used_bytes + size > self.quota_bytes:
            purge_expired(self.directory, self.clock())
            self.used_bytes = _used_bytes(self.directory)  # also sees deletions by `snapseal purge`
        if self.used_bytes + size > self.quota_bytes:
            self.refused_records += 1
            raise StoreFullError(
                f"{self.directory}: record store full ({self.used_bytes} of {self.quota_bytes} bytes used); "
                f"refused record {header.record_id} ({size} bytes), {self.refused_records} refused so far")
        path = self.directory / header.file_name
        temp_name = f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.part"
        try:
            write_file_atomically(path, bytes(record_bytes), mode=0o600, overwrite=False, temp_name=temp_name)
        except FileExistsError:
            raise SnapsealError(f"{path}: a record with this id is already stored; refusing to overwrite it") from None
        except OSError as error:
            name = errno.errorcode.get(error.errno or 0, "error")
            raise StoreWriteError(
                f"{self.directory}: cannot write record {header.record_id}: {error.strerror or error} ({name}); "
                f"temp file removed, nothing stored, retry later", error.errno) from None
        self.used_bytes += size
        self.written_records += 1
        return path

    def purge_expired(self, now: float | None = None) -> list[StoredRecord]:
        with self._lock:
            deleted = purge_expired(self.directory, self.clock() if now is None else now)
            self.used_bytes = _used_bytes(self.directory)
            return deleted
