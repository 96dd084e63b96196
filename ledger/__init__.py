"""The ledger: accounts, immutable transfers, two-phase holds, balances and their audit.

The only code that moves money. Every function works inside the caller's transaction.
"""

from ledger.accounts import AccountPolicy, policy_for
from ledger.audit import AuditReport, CurrencyTotals, audit
from ledger.balances import Balance
from ledger.book import Book
from ledger.codes import TransferCode
from ledger.errors import (
    AccountFrozen,
    CurrencyMismatch,
    InvalidTransfer,
    LedgerError,
    Overdraft,
    PendingAlreadyResolved,
    PendingNotFound,
    TransferConflict,
)
from ledger.journal import Entry
from ledger.transfers import Transfer, TransferKind

# A running sum's limit is the store's (every package's running sums share the column type);
# the book raises it too, and its callers catch it from here.
from store.errors import SumOutOfRange

__all__ = [
    "AccountFrozen",
    "AccountPolicy",
    "AuditReport",
    "Balance",
    "Book",
    "CurrencyMismatch",
    "CurrencyTotals",
    "Entry",
    "InvalidTransfer",
    "LedgerError",
    "Overdraft",
    "PendingAlreadyResolved",
    "PendingNotFound",
    "SumOutOfRange",
    "Transfer",
    "TransferCode",
    "TransferConflict",
    "TransferKind",
    "audit",
    "policy_for",
]
