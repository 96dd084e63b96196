"""Transfer rows: recording them and reading them back as entries.

Rows are only ever inserted. A pending transfer's state is not stored on it: it is resolved
once a later transfer names it in `pending_id`, which the database allows once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, exists, insert, or_, select

from ledger.codes import TransferCode
from ledger.tables import accounts, transfers
from ledger.transfers import TransferKind
from store import read_cache
from store.prepared import Prepared

_POSTED_KINDS = frozenset({TransferKind.POSTED, TransferKind.POST_PENDING})


@dataclass(frozen=True, slots=True)
class Entry:
    """One recorded transfer, as a statement shows it."""

    transfer_id: str
    kind: TransferKind
    debit: str
    credit: str
    amount_minor: int
    currency: str
    code: TransferCode
    event_id: str
    occurred_at: datetime
    pending_id: str | None  # the hold that this transfer posts or voids

    def posted_change_minor(self, name: str) -> int:
        """How this entry changed the posted balance of account `name` (credit +, debit -)."""
        if self.kind not in _POSTED_KINDS:
            return 0
        if name == self.credit:
            return self.amount_minor
        if name == self.debit:
            return -self.amount_minor
        return 0


@dataclass(frozen=True, slots=True)
class Held:
    """A pending transfer, as posting or voiding it needs it."""

    row_id: int
    kind: TransferKind
    debit_account_id: int
    credit_account_id: int
    amount_minor: int
    currency: str
    code: TransferCode


DEBIT_ACCOUNT = accounts.alias("debit_account")
CREDIT_ACCOUNT = accounts.alias("credit_account")
WITH_ACCOUNTS = transfers.join(
    DEBIT_ACCOUNT, DEBIT_ACCOUNT.c.id == transfers.c.debit_account_id
).join(CREDIT_ACCOUNT, CREDIT_ACCOUNT.c.id == transfers.c.credit_account_id)
"""Transfers joined to their two accounts, whose names are `DEBIT_ACCOUNT.c.name` and
`CREDIT_ACCOUNT.c.name`: how every reader of entries names them."""


def _entry_columns(debit: Any, credit: Any, pending_id: Any) -> Select[Any]:
    """The columns `_entry` reads, in its order, with the account names and the held
    transfer's id given as the caller reads them."""
    return select(
        transfers.c.transfer_id,
        transfers.c.kind,
        debit.label("debit"),
        credit.label("credit"),
        transfers.c.amount_minor,
        transfers.c.currency,
        transfers.c.code,
        transfers.c.event_id,
        transfers.c.occurred_at,
        pending_id.label("pending_id"),
    )


def _entries() -> Select[Any]:
    held = transfers.alias("held")
    return _entry_columns(
        DEBIT_ACCOUNT.c.name, CREDIT_ACCOUNT.c.name, held.c.transfer_id
    ).select_from(WITH_ACCOUNTS.outerjoin(held, held.c.id == transfers.c.pending_id))


def _by_transfer_id() -> Select[Any]:
    """`_entries` of a few transfer ids, with every other row found by its primary key.

    Each posting asks it. As joins, PostgreSQL without statistics (autovacuum off, tables
    grown since their last ANALYZE) hashed whole scans of the accounts, and of the transfers
    for `held`, into them: 2 ms a call after 8,000 events, and growing (docs/performance.md,
    "Plans for a growing book"). A scalar subquery by primary key is an index lookup whatever
    the planner believes of a table's size."""
    held = transfers.alias("held")

    def name_of(account_id: Any) -> Any:
        return select(accounts.c.name).where(accounts.c.id == account_id).scalar_subquery()

    return _entry_columns(
        name_of(transfers.c.debit_account_id),
        name_of(transfers.c.credit_account_id),
        select(held.c.transfer_id).where(held.c.id == transfers.c.pending_id).scalar_subquery(),
    ).where(transfers.c.transfer_id.in_(bindparam("transfer_ids", expanding=True)))


_ENTRIES = _entries()
# The statements every posting runs are prepared once (`store.prepared`): SQLAlchemy's
# per-statement work costs more than running them on SQLite. This one is planned at each
# execution all the same: a generic plan made while the transfers were few scans them whole.
_BY_TRANSFER_ID = Prepared(_by_transfer_id(), plan_each_time=True)
_BY_ACCOUNT = _ENTRIES.where(
    or_(
        transfers.c.debit_account_id == bindparam("account_id"),
        transfers.c.credit_account_id == bindparam("account_id"),
    )
).order_by(transfers.c.occurred_at, transfers.c.id)
_INSERT = Prepared(insert(transfers))
_HELD = Prepared(
    select(
        transfers.c.id,
        transfers.c.kind,
        transfers.c.debit_account_id,
        transfers.c.credit_account_id,
        transfers.c.amount_minor,
        transfers.c.currency,
        transfers.c.code,
    ).where(transfers.c.transfer_id == bindparam("transfer_id"))
)
_RESOLVED = Prepared(select(exists().where(transfers.c.pending_id == bindparam("row_id"))))


def _entry(row: tuple[Any, ...]) -> Entry:
    transfer_id, kind, debit, credit, amount, currency, code, event_id, at, pending_id = row
    return Entry(
        transfer_id=transfer_id,
        kind=TransferKind(kind),
        debit=debit,
        credit=credit,
        amount_minor=amount,
        currency=currency,
        code=TransferCode(code),
        event_id=event_id,
        occurred_at=at,
        pending_id=pending_id,
    )


TRANSFER_IDS_CACHE = "ledger.transfer_ids"
"""The read cache (`store.read_cache`) of the transfer ids a complete cache has recorded: the
ids alone, since a transfer recorded twice is rare and its entry is then read back."""


def recorded(conn: Connection, transfer_ids: Collection[str]) -> dict[str, Entry]:
    """The entries already recorded under any of `transfer_ids`."""
    wanted = set(transfer_ids)
    known = read_cache.complete_namespace(conn, TRANSFER_IDS_CACHE)
    if known is not None:
        # Every transfer of the database went in through `record`, which keeps its id.
        wanted = {transfer_id for transfer_id in wanted if transfer_id in known}
        if not wanted:
            return {}
    rows = _BY_TRANSFER_ID.rows(conn, {"transfer_ids": sorted(wanted)})
    found = (_entry(row) for row in rows)
    return {entry.transfer_id: entry for entry in found}


def entries_of(conn: Connection, account_id: int) -> list[Entry]:
    rows = conn.execute(_BY_ACCOUNT, {"account_id": account_id})
    return [_entry(tuple(row)) for row in rows]


def record(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    written = list(rows)
    _INSERT.run_many(conn, written)
    known = read_cache.complete_namespace(conn, TRANSFER_IDS_CACHE)
    if known is not None:
        known.put_all(dict.fromkeys(row["transfer_id"] for row in written))


def find_held(conn: Connection, transfer_id: str) -> Held | None:
    row = _HELD.first(conn, {"transfer_id": transfer_id})
    if row is None:
        return None
    row_id, kind, debit_account_id, credit_account_id, amount, currency, code = row
    return Held(
        row_id=row_id,
        kind=TransferKind(kind),
        debit_account_id=debit_account_id,
        credit_account_id=credit_account_id,
        amount_minor=amount,
        currency=currency,
        code=TransferCode(code),
    )


def is_resolved(conn: Connection, held: Held) -> bool:
    (row,) = _RESOLVED.rows(conn, {"row_id": held.row_id})
    return bool(row[0])
