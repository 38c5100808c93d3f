"""The public check of a record: structure and the device's outer signature, with no private key.

It proves that the header (expiry, recipient, record id) and the ciphertext are exactly what the
holder of the device key in the header wrote; with ``trusted_device_keys`` also that this device
is one of yours. It cannot say anything about the crop inside: a sealed box opens only with the
investigator's private key (investigator/open.py).
"""

from __future__ import annotations

import os
from typing import Iterable

import nacl.exceptions
import nacl.signing

from snapseal.daemon.keys import DevicePublicKey
from snapseal.daemon.records.layout import (
    HEADER_SIZE,
    OUTER_DOMAIN,
    PREFIX_SIZE,
    SEALED_BOX_OVERHEAD,
    SIGNATURE_SIZE,
    CorruptRecordError,
    RecordHeader,
    TamperedRecordError,
    UntrustedDeviceError,
    parse_header,
)


def _trusted_key_set(trusted_device_keys: Iterable[DevicePublicKey | bytes] | None) -> set[bytes] | None:
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
    if header.body_length < SEALED_BOX_OVERHEAD + SIGNATURE_SIZE + HEADER_SIZE:
        raise CorruptRecordError(source, f"body of {header.body_length} bytes is too short to hold a record")
    outer_signature = data[HEADER_SIZE:PREFIX_SIZE]
    try:
        nacl.signing.VerifyKey(header.device_public_key).verify(
            OUTER_DOMAIN + data[:HEADER_SIZE] + data[PREFIX_SIZE:], outer_signature)
    except (nacl.exceptions.CryptoError, ValueError):
        raise TamperedRecordError(source, "the device signature over header and ciphertext does not match") from None
    trusted = _trusted_key_set(trusted_device_keys)
    if trusted is not None and header.device_public_key not in trusted:
        raise UntrustedDeviceError(source, f"signed by device key {header.device_key_id}, which is not in the trusted set")
    return header



__all__ = ["verify_record"]
