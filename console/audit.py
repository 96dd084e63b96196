"""The append-only log of operator actions: who, when, what, on which subject, with details."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from console.tables import operator_audit


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    operator: str
    action: str
    subject: str
    details: dict[str, Any]


def record(
    conn: Connection,
    *,
    at: datetime,
    operator: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(operator_audit).values(
            at=at, operator=operator, action=action, subject=subject, details=details or {}
        )
    )


def entries(
    conn: Connection,
    *,
    before_seq: int | None = None,
    subject: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest first, `limit` at a time; `before_seq` pages back (keyset)."""
    query = select(operator_audit).order_by(operator_audit.c.seq.desc()).limit(limit)
    if before_seq is not None:
        query = query.where(operator_audit.c.seq < before_seq)
    if subject is not None:
        query = query.where(operator_audit.c.subject == subject)
    return [_entry(row) for row in conn.execute(query)]


def export(conn: Connection, *, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditEntry]:
    """Every entry after `after_seq`, oldest first, read `batch` at a time (keyset): the order a
    JSON Lines export is appended to."""
    while True:
        rows = conn.execute(
            select(operator_audit)
            .where(operator_audit.c.seq > after_seq)
            .order_by(operator_audit.c.seq)
            .limit(batch)
        ).all()
        yield from (_entry(row) for row in rows)
        if len(rows) < batch:
            return
        after_seq = rows[-1].seq


def as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat().replace("+00:00", "Z"),
        "operator": entry.operator,
        "action": entry.action,
        "subject": entry.subject,
        "details": entry.details,
    }


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        operator=row.operator,
        action=row.action,
        subject=row.subject,
        details=dict(row.details),
    )
