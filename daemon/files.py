"""The daemon's one filesystem module: atomic, durable writes and the checks around them.

- ``write_file_atomically(path, data, mode, overwrite, temp_name)``: temp file in the same
  directory (created with ``mode`` from the start, so a secret is never briefly
  world-readable), write, fsync, rename (or link when ``overwrite=False``), fsync the directory.
  ``path`` is either absent/old or complete, never partial.
- ``fsync_directory(directory)``: make a rename/unlink durable.
- ``write_all(fd, data)``: os.write until every byte is out.
- ``check_private_file(path, what)``: refuse a secret file that others may read or write
  (like ssh does for its private keys).

Used by the key files (daemon/keys.py), the record store (daemon/records/store.py), the
investigator's tools (investigator/) and `snapseal open`.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from snapseal.daemon.errors import SnapsealError


def fsync_directory(directory: Path | str) -> None:
    """Make a rename/unlink in ``directory`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself already happened
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out (os.write may write fewer bytes than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_temp_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Create ``path`` (O_EXCL, ``mode`` exactly), write every byte and fsync; remove it on failure."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have taken bits away; make the mode exact
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        raise


def publish_temp_file(temp_path: Path, path: Path, overwrite: bool = False) -> Path:
    """Move a complete, fsynced temp file to ``path`` and fsync the directory.

    ``overwrite=False`` refuses an existing ``path`` (FileExistsError) by linking, so a racing
    writer can't be clobbered; on filesystems without hard links it checks, then renames."""
    temp_path, path = Path(temp_path), Path(path)
    if overwrite:
        os.replace(temp_path, path)
    else:
        try:
            os.link(temp_path, path)  # fails with FileExistsError instead of replacing
        except FileExistsError:
            raise
        except OSError:  # a filesystem without hard links (vfat, some FUSE): check, then rename
            if path.exists():
                raise FileExistsError(f"{path} exists") from None
            os.replace(temp_path, path)
        else:
            os.unlink(temp_path)
    fsync_directory(path.parent)
    return path


def write_file_atomically(path: Path, data: bytes, mode: int = 0o600, overwrite: bool = False,
                          temp_name: str | None = None) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is either absent/old or complete, never partial.

    On any failure the temp file is removed and the OSError propagates. ``overwrite=False``
    refuses an existing ``path`` (FileExistsError)."""
    path = Path(path)
    directory = path.parent
    temp_path = directory / (temp_name or f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists")
    write_temp_file(temp_path, data, mode)
    try:
        publish_temp_file(temp_path, path, overwrite=overwrite)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise
    return path


def check_private_file(path: Path | str, what: str) -> None:
    """Refuse a secret file that its group or others may read or write (mode & 0o077), or one
    owned by another user (root may read any); one line naming the file, its mode and the fix."""
    try:
        info = os.stat(path)
    except OSError:
        return  # the loader reports a missing or unreadable file in its own words
    if not stat.S_ISREG(info.st_mode):
        return
    loose = stat.S_IMODE(info.st_mode) & 0o077
    if loose:
        raise SnapsealError(f"{path}: {what} has mode {stat.S_IMODE(info.st_mode):04o}, readable or writable by "
                            f"others; refusing it (chmod 600 {path})")
    if hasattr(os, "getuid") and os.getuid() != 0 and info.st_uid != os.getuid():
        raise SnapsealError(f"{path}: {what} is owned by uid {info.st_uid}, not by this user; refusing it")
