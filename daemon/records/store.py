"""The local spool of sealed records: one file ``<record-id>.snap`` per record.

API (for the pipeline)::

    store = RecordStore(directory, quota_bytes, retention_s=None)
                        # creates the dir (0700); finishes complete temp files a crash left,
                        # removes the others
    path = store.write(record_bytes, replace=False)   # atomic; StoreFullError / StoreWriteError
    deleted = store.purge_expired(now=None)           # -> list[StoredRecord]
    store.used_bytes, .refused_records, .written_records, .bytes_written, .removed_temp_files,
    .finished_temp_files                              (thread-safe)
    sequence = StoreSequence(directory, device_key_id)  # the device's record counter, next()

    list_headers(directory) -> list[StoredRecord]      # verdicts with public information only
    purge_expired(directory, now, retention_s=None) -> list[StoredRecord]
    record_files(paths) -> list[Path]                   # *.snap files of dirs and files given

Writing: a temp file ``.snapseal-tmp-<pid>-<random>.part`` in the same directory (mode 0600),
write, fsync, rename to ``<record-id>.snap`` (never over an existing file unless ``replace``:
a provisional record is replaced by a better one, or by the final one, with ``os.replace``, so
the name holds the old or the new record, never neither), fsync the directory. An OSError
removes the temp file and raises ``StoreWriteError`` (one line, ``.errno``; ``.retryable`` for
the disk-full kind ENOSPC/EDQUOT). If the directory itself is gone (ENOENT) it is created again
and the write tried once more. The store writes only bytes that parse as a record header, so it
can't be handed a plaintext image by mistake.

A crash can leave a temp file. At start (``RecordStore()``), a temp file whose writer is gone
(its pid is in the name) and that holds a complete record whose device signature verifies is
**finished** (renamed to its record's name: the record was fsynced, only the rename was
missing); any other such temp file is removed.

Quota policy: **refuse, never evict.** A record that would take the spool over ``quota_bytes``
first triggers a purge of expired records (they are due anyway); if it still doesn't fit, the
write raises ``StoreFullError`` and ``refused_records`` goes up; the daemon keeps it queued
(daemon/sink.py). The quota counts the bytes of ``*.snap`` files.

Purge policy (docs/FORMAT.md, "Expiry"): a record is deleted when its plaintext expiry has
passed **and its device signature verifies** (an expiry forged into the past is not believed).
A ``*.snap`` file that does not verify (corrupt, tampered, not a record) has no expiry one can
trust: it is deleted once the file is older than the retention period (``retention_s``, file
modification time), so neither a forged far-future expiry nor garbage stays for ever; without
``retention_s`` it is left in place and listed.
"""

from __future__ import annotations

import errno
import json
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
from snapseal.daemon.records.layout import RECORD_SUFFIX, RecordError, RecordHeader, parse_header
from snapseal.daemon.records.verify import check_file, read_record_file, verify_record

TEMP_PREFIX = ".snapseal-tmp-"
TEMP_PATTERN = re.compile(r"^\.snapseal-tmp-(\d+)-[0-9a-f]+\.part$")
SEQUENCE_FILE = ".snapseal-sequence.json"
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
    """A ``*.snap`` file as seen without any key: its header (parsed; verified when ``error`` is
    None), and why it can't be trusted otherwise (the same words as `snapseal verify`)."""

    path: Path
    size: int
    header: RecordHeader | None
    error: str | None = None
    note: str = ""
    mtime_ns: int = 0


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


def recover_temp_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """(removed, finished): temp files of a writer that is gone (or has our pid: reuse)."""
    removed, finished = [], []
    for entry in os.scandir(directory):
        match = TEMP_PATTERN.match(entry.name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _pid_alive(pid):
            continue
        temp = Path(entry.path)
        try:
            data = read_record_file(temp)
            header = verify_record(data, source=temp)
        except RecordError:
            header = None
        try:
            if header is not None:
                target = directory / header.file_name
                try:
                    same = target.read_bytes() == data
                except FileNotFoundError:
                    same = False
                if same:
                    os.unlink(temp)  # the rename happened; only the temp's unlink was missing
                else:
                    os.replace(temp, target)
                    finished.append(target)
                continue
            os.unlink(temp)
            removed.append(temp)
        except FileNotFoundError:
            pass
    if removed or finished:
        fsync_directory(directory)
    return removed, finished


def remove_stray_temp_files(directory: Path) -> list[Path]:
    """Compatibility name: recover, and return what was removed."""
    return recover_temp_files(directory)[0]


def record_files(paths: Iterable[Path | str]) -> list[Path]:
    """Directories expand to their ``*.snap`` files (sorted); files are taken as given."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.name.endswith(RECORD_SUFFIX) and p.is_file()))
        else:
            files.append(path)
    return files


VerdictCache = dict  # file name -> ((size, mtime_ns, inode), StoredRecord)


def read_stored_header(path: Path, cache: VerdictCache | None = None) -> StoredRecord:
    """One record file's verdict (daemon/records/verify.check_file) for listings; never raises.

    With ``cache`` (kept by a ``RecordStore``), a file whose size, mtime and inode did not change
    since it was last checked keeps its verdict: the periodic purge does not re-read every record."""
    try:
        info = os.stat(path)
        mtime_ns, stamp = info.st_mtime_ns, (info.st_size, info.st_mtime_ns, info.st_ino)
    except OSError:
        mtime_ns, stamp = 0, None
    if cache is not None and stamp is not None:
        hit = cache.get(path.name)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    stored = _check_stored(path, mtime_ns)
    if cache is not None and stamp is not None:
        cache[path.name] = (stamp, stored)
    return stored


def _check_stored(path: Path, mtime_ns: int) -> StoredRecord:
    verdict = check_file(path)
    if verdict.error is None:
        return StoredRecord(path, verdict.size, verdict.header, None, verdict.note, mtime_ns)
    header = None
    try:
        with open(path, "rb") as handle:
            header = parse_header(handle.read(256), path)
    except (OSError, RecordError):
        pass
    return StoredRecord(path, verdict.size, header, f"{verdict.error.reason}: {verdict.error.detail}", "", mtime_ns)


def list_headers(directory: Path | str, cache: VerdictCache | None = None) -> list[StoredRecord]:
    """Every ``*.snap`` in ``directory``, oldest first; unreadable ones last, with their error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SnapsealError(f"{directory}: not a directory of records")
    files = record_files([directory])
    if cache is not None:
        names = {path.name for path in files}
        for gone in [name for name in cache if name not in names]:
            del cache[gone]
    stored = [read_stored_header(path, cache) for path in files]
    return sorted(stored, key=lambda s: (s.header is None, s.header.created_ms if s.header else 0,
                                         s.header.sequence if s.header else 0, s.mtime_ns, s.path.name))


def _note_deleted_sequences(directory: Path, deleted: list[StoredRecord]) -> None:
    """Before records go, raise the sequence state past them, so numbers are never reused."""
    state_path = directory / SEQUENCE_FILE
    if not state_path.exists():
        return
    highest: dict[str, int] = {}
    for stored in deleted:
        if stored.header is not None and stored.error is None and stored.header.sequence:
            device = stored.header.device_key_id
            highest[device] = max(highest.get(device, 0), stored.header.sequence)
    if highest:
        state = _read_sequence_state(state_path)
        for device, sequence in highest.items():
            state[device] = max(state.get(device, 1), sequence + 1)
        _write_sequence_state(state_path, state)


def purge_expired(directory: Path | str, now: float, retention_s: float | None = None,
                  cache: VerdictCache | None = None) -> list[StoredRecord]:
    """Delete verified records whose expiry is at or before ``now``, and (with ``retention_s``)
    files that do not verify and are older than the retention period; return what went."""
    directory = Path(directory)
    due = []
    for stored in list_headers(directory, cache):
        if stored.error is None and stored.header is not None:
            if stored.header.is_expired(now):
                due.append(stored)
        elif retention_s is not None and stored.mtime_ns and now - stored.mtime_ns / 1e9 >= retention_s:
            due.append(stored)
    _note_deleted_sequences(directory, due)
    deleted = []
    for stored in due:
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
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.endswith(RECORD_SUFFIX):
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
    return total


def _make_store_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise SnapsealError(f"{directory}: cannot create the record store: {error.strerror or error}") from None
    if not directory.is_dir():
        raise SnapsealError(f"{directory}: not a directory (record store)")


@dataclass
class RecordStore:
    """The camera's spool directory with a byte quota (policy: refuse, never evict; see above)."""

    directory: Path
    quota_bytes: int
    clock: Callable[[], float] = field(default=time.time, repr=False)
    retention_s: float | None = None
    used_bytes: int = field(init=False, default=0)
    refused_records: int = field(init=False, default=0)
    written_records: int = field(init=False, default=0)
    replaced_records: int = field(init=False, default=0)
    bytes_written: int = field(init=False, default=0)
    directory_recreated: int = field(init=False, default=0)
    removed_temp_files: list[Path] = field(init=False, default_factory=list)
    finished_temp_files: list[Path] = field(init=False, default_factory=list)
    _verdicts: dict = field(init=False, default_factory=dict, repr=False)  # read_stored_header's cache
    # write() and purge_expired() may run on different threads (sealing vs. a purge timer).
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if not self.quota_bytes > 0:
            raise SnapsealError(f"{self.directory}: store quota must be positive, got {self.quota_bytes}")
        self.quota_bytes = int(self.quota_bytes)
        _make_store_dir(self.directory)
        self.removed_temp_files, self.finished_temp_files = recover_temp_files(self.directory)
        self.used_bytes = _used_bytes(self.directory)

    def write(self, record_bytes: bytes, replace: bool = False) -> Path:
        """Store one sealed record atomically; return its path. ``replace``: a record with the
        same id (a provisional one) may be there and is replaced atomically."""
        with self._lock:
            return self._write_locked(bytes(record_bytes), replace)

    def _write_locked(self, record_bytes: bytes, replace: bool) -> Path:
        header = parse_header(record_bytes, "record handed to the store")
        if len(record_bytes) != header.record_length:
            raise SnapsealError(f"record {header.record_id}: {len(record_bytes)} bytes, its header says "
                                f"{header.record_length}; refusing to store it")
        size = len(record_bytes)
        path = self.directory / header.file_name
        old_size = 0
        if replace:
            try:
                old_size = path.stat().st_size
            except OSError:
                old_size = 0
        if self.used_bytes - old_size + size > self.quota_bytes:
            purge_expired(self.directory, self.clock(), self.retention_s, self._verdicts)
            self.used_bytes = _used_bytes(self.directory)  # also sees deletions by `snapseal purge`
        if self.used_bytes - old_size + size > self.quota_bytes:
            self.refused_records += 1
            raise StoreFullError(
                f"{self.directory}: record store full ({self.used_bytes} of {self.quota_bytes} bytes used); "
                f"refused record {header.record_id} ({size} bytes), {self.refused_records} refused so far")
        for attempt in (1, 2):
            temp_name = f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.part"
            try:
                write_file_atomically(path, record_bytes, mode=0o600, overwrite=replace, temp_name=temp_name)
                break
            except FileExistsError:
                raise SnapsealError(f"{path}: a record with this id is already stored; refusing to overwrite it") from None
            except OSError as error:
                if attempt == 1 and error.errno == errno.ENOENT and not self.directory.is_dir():
                    try:
                        _make_store_dir(self.directory)  # the store directory was deleted: make it again
                    except SnapsealError:
                        pass
                    else:
                        self.directory_recreated += 1
                        self.used_bytes = 0
                        continue
                name = errno.errorcode.get(error.errno or 0, "error")
                raise StoreWriteError(
                    f"{self.directory}: cannot write record {header.record_id}: {error.strerror or error} ({name}); "
                    f"temp file removed, nothing stored", error.errno) from None
        self.used_bytes += size - old_size
        if replace and old_size:
            self.replaced_records += 1
        self.written_records += 1
        self.bytes_written += size
        return path

    def purge_expired(self, now: float | None = None) -> list[StoredRecord]:
        with self._lock:
            deleted = purge_expired(self.directory, self.clock() if now is None else now, self.retention_s, self._verdicts)
            self.used_bytes = _used_bytes(self.directory)
            return deleted


# ---------------------------------------------------------------- the device's record counter


def _read_sequence_state(path: Path) -> dict[str, int]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(document, dict) or not isinstance(document.get("next"), dict):
        return {}
    return {str(k): int(v) for k, v in document["next"].items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}


def _write_sequence_state(path: Path, state: dict[str, int]) -> None:
    data = (json.dumps({"snapseal_sequence": 1, "next": dict(sorted(state.items()))}, indent=1) + "\n").encode()
    try:
        write_file_atomically(path, data, mode=0o600, overwrite=True)
    except OSError:
        pass  # the records themselves carry the numbers; the next start scans them


class StoreSequence:
    """The per-device sequence number (1, 2, 3, ...) sealed into every record's header.

    It survives restarts: at start the next number is one past the highest this device key has
    in the store, or what ``.snapseal-sequence.json`` says (written at shutdown and before a
    purge deletes records, so numbers of purged records are never reused), whichever is higher.
    Nothing is written per record: the records carry their numbers."""

    def __init__(self, directory: Path | str, device_key_id: str) -> None:
        self.directory = Path(directory)
        self.device_key_id = device_key_id
        self.state_path = self.directory / SEQUENCE_FILE
        self._lock = threading.Lock()
        highest = 0
        for stored in list_headers(self.directory):
            if stored.error is None and stored.header is not None and stored.header.device_key_id == device_key_id:
                highest = max(highest, stored.header.sequence)
        state = _read_sequence_state(self.state_path)
        self._next = max(highest + 1, state.get(device_key_id, 1))
        state[device_key_id] = self._next
        _write_sequence_state(self.state_path, state)

    def __call__(self) -> int:
        with self._lock:
            value = self._next
            self._next += 1
            return value

    @property
    def next_value(self) -> int:
        return self._next

    def save(self) -> None:
        with self._lock:
            state = _read_sequence_state(self.state_path)
            state[self.device_key_id] = max(state.get(self.device_key_id, 1), self._next)
            if self.directory.is_dir():
                _write_sequence_state(self.state_path, state)
