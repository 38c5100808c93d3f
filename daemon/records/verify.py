"""The public check of a record: structure and the device's outer signature, with no private key.

It proves that the header (expiry, recipient, record id, sequence) and the ciphertext are
exactly what the holder of the device key in the header wrote; with ``trusted_device_keys``
also that this device is one of yours. It cannot say anything about the crop inside: a sealed
box opens only with the investigator's private key (investigator/open.py).

``check_file(path)`` is the one verdict on a record file that `snapseal ls`, `verify`, `open`
and `purge` share: the same bytes always get the same word (ok / not-a-record / corrupt /
tampered / ...), and a record that is intact but not under its own name is ``ok`` with a note.
``sequence_findings(headers, now)`` reports what a per-device sequence shows: numbers missing
between records still present (not explained by expiry) and one sequence number on two records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import nacl.exceptions
import nacl.signing

from snapseal.daemon.keys import DevicePublicKey
from snapseal.daemon.records.layout import (
    SEALED_BOX_OVERHEAD,
    SIGNATURE_SIZE,
    CorruptRecordError,
    RecordError,
    RecordHeader,
    TamperedRecordError,
    UntrustedDeviceError,
    parse_header,
)


def trusted_key_set(trusted_device_keys: Iterable[DevicePublicKey | bytes] | None) -> set[bytes] | None:
    if trusted_device_keys is None:
        return None
    return {key.public_bytes if isinstance(key, DevicePublicKey) else bytes(key) for key in trusted_device_keys}


def verify_record(data: bytes, trusted_device_keys: Iterable[DevicePublicKey | bytes] | None = None,
                  source: str | os.PathLike | None = None) -> RecordHeader:
    """Check structure and the outer device signature with public information only."""
    data = bytes(data)
    header = parse_header(data, source)
    if len(data) != header.record_length:
        what = "truncated" if len(data) < header.record_length else "has trailing bytes"
        raise CorruptRecordError(source, f"{what}: {len(data)} bytes, the header says {header.record_length}")
    if header.body_length < SEALED_BOX_OVERHEAD + header.prefix_size:
        raise CorruptRecordError(source, f"body of {header.body_length} bytes is too short to hold a record")
    size = header.header_size
    outer_signature = data[size:size + SIGNATURE_SIZE]
    try:
        nacl.signing.VerifyKey(header.device_public_key).verify(
            header.outer_domain + data[:size] + data[header.prefix_size:], outer_signature)
    except (nacl.exceptions.CryptoError, ValueError):
        raise TamperedRecordError(source, "the device signature over header and ciphertext does not match") from None
    trusted = trusted_key_set(trusted_device_keys)
    if trusted is not None and header.device_public_key not in trusted:
        raise UntrustedDeviceError(source, f"signed by device key {header.device_key_id}, which is not in the trusted set")
    return header


@dataclass(frozen=True)
class FileVerdict:
    """One record file: its verified header, or the error; ``note`` for an intact record whose
    file name is not its record id (a copy or a rename: worth a word, not a failure)."""

    path: Path
    size: int
    header: RecordHeader | None
    error: RecordError | None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def word(self) -> str:
        return "ok" if self.error is None else self.error.reason


def read_record_file(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > 2 * 1024 * 1024 * 1024:
                raise CorruptRecordError(path, f"{size} bytes is not plausible for a record")
            return handle.read()
    except OSError as error:
        raise RecordError(path, f"cannot read: {error.strerror or error}") from None


def check_file(path: Path | str, trusted_device_keys: Iterable[DevicePublicKey | bytes] | None = None,
               data: bytes | None = None) -> FileVerdict:
    """The verdict every command gives a record file (public information only)."""
    path = Path(path)
    try:
        data = read_record_file(path) if data is None else data
        header = verify_record(data, trusted_device_keys, source=path)
    except RecordError as error:
        return FileVerdict(path, len(data) if data is not None else 0, None, error)
    note = "" if path.name == header.file_name else f"file name is not {header.file_name}"
    return FileVerdict(path, len(data), header, None, note)


@dataclass(frozen=True)
class SequenceFinding:
    device_key_id: str
    kind: str  # "gap" | "duplicate"
    text: str


def sequence_findings(headers: Iterable[RecordHeader], now: float) -> list[SequenceFinding]:
    """Per device key: sequence numbers missing between two records that are present, where the
    lower neighbour has not expired (expiry runs in sequence order, so a record after an
    unexpired one cannot have expired: something removed it), and one sequence number carried by
    two different records (a copy under another id, or a forgery). Numbers below the lowest
    present one are what expiry removes and are not reported. Sequence 0 means none was kept."""
    by_device: dict[str, dict[int, list[RecordHeader]]] = {}
    for header in headers:
        if header.sequence > 0:
            by_device.setdefault(header.device_key_id, {}).setdefault(header.sequence, []).append(header)
    findings = []
    for device, seen in sorted(by_device.items()):
        for sequence, records in sorted(seen.items()):
            ids = sorted({h.record_id for h in records})
            if len(ids) > 1:
                findings.append(SequenceFinding(device, "duplicate", f"device {device}: sequence {sequence} is on "
                                                f"{len(ids)} different records ({', '.join(ids)})"))
        numbers = sorted(seen)
        for lower, upper in zip(numbers, numbers[1:]):
            if upper - lower > 1 and not seen[lower][0].is_expired(now):
                missing = upper - lower - 1
                span = f"{lower + 1}" if missing == 1 else f"{lower + 1}..{upper - 1}"
                findings.append(SequenceFinding(device, "gap", f"device {device}: sequence {span} missing "
                                                f"({missing} record{'s' if missing > 1 else ''}) between records still "
                                                f"present; expiry does not explain it"))
    return findings


__all__ = ["verify_record", "trusted_key_set", "check_file", "FileVerdict", "read_record_file",
           "sequence_findings", "SequenceFinding"]
