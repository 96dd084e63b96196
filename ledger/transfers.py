"""The transfer: one immutable movement of an amount from a debit to a credit account.

Building a Transfer checks nothing, so callers may assemble a decision (zero amounts
included) and drop what does not move; the book checks each transfer before it posts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ledger.accounts import check_account
from ledger.codes import TransferCode
from ledger.errors import InvalidTransfer

MAX_TRANSFER_ID_LENGTH = 200
MAX_EVENT_ID_LENGTH = 128
# Amounts are BIGINT in the database; refusing larger ones here gives a clear error.
MAX_AMOUNT_MINOR = 2**63 - 1


class TransferKind(StrEnum):
    """TigerBeetle's two-phase model: a pending transfer reserves, a later one posts or voids it."""

    POSTED = "posted"
    PENDING = "pending"
    POST_PENDING = "post_pending"
    VOID_PENDING = "void_pending"


@dataclass(frozen=True, slots=True)
class Transfer:
    transfer_id: str
    debit: str
    credit: str
    amount_minor: int
    currency: str
    code: TransferCode
    event_id: str
    occurred_at: datetime


def check_amount(amount_minor: object) -> int:
    # bool is an int subclass; True would otherwise move one cent.
    if (
        not isinstance(amount_minor, int)
        or isinstance(amount_minor, bool)
        or not 0 < amount_minor <= MAX_AMOUNT_MINOR
    ):
        raise InvalidTransfer(f"amount {amount_minor!r} is not a positive integer of minor units")
    return amount_minor


def check_cause(transfer_id: str, event_id: str, occurred_at: datetime) -> None:
    """The fields every transfer record carries, posted or pending, first or resolving."""
    if not isinstance(transfer_id, str) or not 0 < len(transfer_id) <= MAX_TRANSFER_ID_LENGTH:
        raise InvalidTransfer(f"transfer id {transfer_id!r} is not 1 to 200 characters")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        raise InvalidTransfer(f"event id {event_id!r} of {transfer_id!r} is not 1 to 128 chars")
    # Any offset names one instant; the time is stored as UTC.
    if not isinstance(occurred_at, datetime) or occurred_at.utcoffset() is None:
        raise InvalidTransfer(f"occurred_at of {transfer_id!r} is naive, not an aware time")


def check_transfer(transfer: Transfer) -> None:
    """Raise InvalidTransfer (or CurrencyMismatch) unless `transfer` could ever be posted."""
    check_cause(transfer.transfer_id, transfer.event_id, transfer.occurred_at)
    check_amount(transfer.amount_minor)
    if not isinstance(transfer.code, TransferCode):
        raise InvalidTransfer(f"code {transfer.code!r} of {transfer.transfer_id!r} is unknown")
    if transfer.debit == transfer.credit:
        raise InvalidTransfer(f"transfer {transfer.transfer_id!r} debits the account it credits")
    check_account(transfer.debit, transfer.currency)
    check_account(transfer.credit, transfer.currency)
