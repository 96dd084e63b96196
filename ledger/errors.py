"""Every way the book refuses a movement. Each error leaves the book as it was; the book also
raises the store's `SumOutOfRange` (SQLite only, `store.errors`), after which the transaction
must be rolled back."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InvalidTransfer(LedgerError):
    """A transfer that can never be valid: bad amount, id, currency, time or account name."""


class TransferConflict(LedgerError):
    """A transfer id that is already recorded with other fields."""

    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"transfer {transfer_id!r} is already recorded with other fields")
        self.transfer_id = transfer_id


class AccountFrozen(LedgerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"account {name!r} is frozen")
        self.name = name


class Overdraft(LedgerError):
    """The movement would take an account that must not go negative below zero."""

    def __init__(self, name: str, currency: str, balance: int, amount: int) -> None:
        super().__init__(
            f"account {name!r} holds {balance} {currency} available, cannot give {amount}"
        )
        self.name = name
        self.currency = currency
        self.balance = balance
        self.amount = amount


class CurrencyMismatch(LedgerError):
    """An account asked to hold a currency its kind never holds (points hold only PTS)."""

    def __init__(self, name: str, currency: str) -> None:
        super().__init__(f"account {name!r} cannot hold {currency}")
        self.name = name
        self.currency = currency


class PendingNotFound(LedgerError):
    def __init__(self, pending_id: str) -> None:
        super().__init__(f"no pending transfer {pending_id!r}")
        self.pending_id = pending_id


class PendingAlreadyResolved(LedgerError):
    def __init__(self, pending_id: str) -> None:
        super().__init__(f"pending transfer {pending_id!r} was already posted or voided")
        self.pending_id = pending_id
