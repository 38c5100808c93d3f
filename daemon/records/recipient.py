"""Who a record is sealed to: a ``RecipientSource`` gives the investigator public key for the
moment a record is made.

The sealer asks ``recipient_for(created_s)`` for every record (``created_s``: seconds since the
epoch, the record's exact creation time). Today's setup, one investigator public key for every
record, is ``SingleRecipient``; a keyring of per-period keys is another source with the same
method (it may raise a ``SnapsealError`` subclass with a one-line reason, e.g. when it has run
out of periods: then nothing is sealed and the caller logs the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from snapseal.daemon.keys import InvestigatorPublicKey


@runtime_checkable
class RecipientSource(Protocol):
    def recipient_for(self, created_s: float) -> InvestigatorPublicKey:
        """The investigator public key a record created at ``created_s`` is sealed to."""
        ...


@dataclass(frozen=True)
class SingleRecipient:
    """One investigator public key for every record."""

    key: InvestigatorPublicKey

    def recipient_for(self, created_s: float) -> InvestigatorPublicKey:
        return self.key


def as_recipient_source(recipient: object) -> RecipientSource:
    """An ``InvestigatorPublicKey`` becomes a ``SingleRecipient``; a ``RecipientSource`` is kept.
    Anything else (e.g. the investigator's private pair) is a TypeError."""
    if isinstance(recipient, InvestigatorPublicKey):
        return SingleRecipient(recipient)
    if isinstance(recipient, RecipientSource):
        return recipient
    raise TypeError("recipient_pub is an InvestigatorPublicKey (keys.load_investigator_public) "
                    "or a RecipientSource with recipient_for(created_s)")


__all__ = ["RecipientSource", "SingleRecipient", "as_recipient_source"]
