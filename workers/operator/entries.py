"""Ledger transfers as an operator reads them: account names, and the cause of each.

The cause is the event that posted the transfer, or, for a deadline's effects, the deadline
(`deadline:<deadline_id>`): a tick fires deadlines of many contracts at once, so its event id
alone would not say which one moved the money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from ledger.journal import CREDIT_ACCOUNT, DEBIT_ACCOUNT, WITH_ACCOUNTS
from ledger.tables import transfers
from policy.tables import inbox

DEADLINE_CAUSE = "deadline:"
"""How the cause id of a deadline's effects starts (`policy.ticks`)."""


@dataclass(frozen=True, slots=True)
class TransferLine:
    transfer_id: str
    kind: str  # posted | pending | post_pending | void_pending
    at: datetime
    debit: str
    credit: str
    amount_minor: int
    currency: str
    code: str
    event_id: str
    event_type: str | None
    cause: str


def cause_of(transfer_id: str, event_id: str) -> str:
    """What a transfer answers to: its deadline for a deadline's effect, else its event."""
    if transfer_id.startswith(DEADLINE_CAUSE):
        return transfer_id.rpartition("#")[0] or transfer_id
    return event_id


def transfer_lines(conn: Connection, criterion: ColumnElement[bool] | None) -> list[TransferLine]:
    """The transfers matching `criterion` (none when it is None), in the order they happened."""
    if criterion is None:
        return []
    query = (
        select(
            transfers.c.transfer_id,
            transfers.c.kind,
            transfers.c.occurred_at,
            DEBIT_ACCOUNT.c.name.label("debit"),
            CREDIT_ACCOUNT.c.name.label("credit"),
            transfers.c.amount_minor,
            transfers.c.currency,
            transfers.c.code,
            transfers.c.event_id,
            inbox.c.type.label("event_type"),
        )
        .select_from(WITH_ACCOUNTS.outerjoin(inbox, inbox.c.event_id == transfers.c.event_id))
        .where(criterion)
        .order_by(transfers.c.occurred_at, transfers.c.id)
    )
    return [_line(row) for row in conn.execute(query)]


def event_types(conn: Connection, event_ids: set[str]) -> dict[str, str]:
    """The type of each of `event_ids` that the inbox holds."""
    if not event_ids:
        return {}
    rows = conn.execute(
        select(inbox.c.event_id, inbox.c.type).where(inbox.c.event_id.in_(event_ids))
    )
    return {row.event_id: row.type for row in rows}


def _line(row: Any) -> TransferLine:
    return TransferLine(
        transfer_id=row.transfer_id,
        kind=row.kind,
        at=row.occurred_at,
        debit=row.debit,
        credit=row.credit,
        amount_minor=row.amount_minor,
        currency=row.currency,
        code=row.code,
        event_id=row.event_id,
        event_type=row.event_type,
        cause=cause_of(row.transfer_id, row.event_id),
    )
