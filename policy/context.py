"""What a handler works with: the connection, the book, the policies, and the event's effects.

Everything a handler writes (state rows, transfers, deadlines, notifications) goes through the
one connection, inside the transaction that also holds the event's inbox row, so an event's
effects commit together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import count

from sqlalchemy import Connection, insert

from ledger import Book, Transfer, TransferCode
from messages.notifications import (
    NOTIFICATION_TYPE_OF,
    EventRejected,
    Notification,
    NotificationData,
    ReasonCode,
)
from policy.config import PolicyConfig, PolicySet
from policy.outcomes import Rejected
from policy.rules.legs import Leg
from policy.tables import outbox
from scheduler.store import Deadline, schedule_deadline
from store.prepared import Prepared

# Prepared once: SQLAlchemy's per-statement work costs more than running it on SQLite.
_OUTBOX_INSERT = Prepared(insert(outbox))


@dataclass(frozen=True, slots=True)
class DeadlineScope:
    """Which contracts' deadlines a tick fires: all but `skip`, or only `only`'s.

    The ordered runtime fires a tick while an event of a contract still waits for its subject
    (the contract's key is parked) without that contract's deadlines, and fires them once the
    contract's events before the tick are done (`workers.intake`)."""

    skip: frozenset[str] = frozenset()
    only: str | None = None

    def includes(self, contract_id: str | None) -> bool:
        if self.only is not None:
            return contract_id == self.only
        return contract_id not in self.skip


class HandlerContext:
    def __init__(
        self,
        conn: Connection,
        policies: PolicySet,
        *,
        cause_id: str,
        event_id: str,
        event_type: str,
        occurred_at: datetime,
        book: Book | None = None,
    ) -> None:
        self.conn = conn
        # `book`: the caller's, when it knows how the book should meet racing writers (the
        # replay of its own file has none); else one for a connection others write beside.
        self.book = book if book is not None else Book(conn)
        self.policies = policies
        # `cause_id` names what caused the effects: the event, or the deadline a tick fires.
        # Transfer and notification ids derive from it, so redoing a cause repeats its ids.
        self.cause_id = cause_id
        self.event_id = event_id
        self.event_type = event_type
        self.at = occurred_at
        self.contract_id: str | None = None
        self.deadline_scope = DeadlineScope()
        self._transfer_numbers = count(1)

    def policy(self, name: str | None) -> PolicyConfig:
        return self.policies.get(name)

    def for_cause(self, cause_id: str) -> HandlerContext:
        """A context whose effects are named after another cause (a deadline a tick fires)."""
        return HandlerContext(
            self.conn,
            self.policies,
            cause_id=cause_id,
            event_id=self.event_id,
            event_type=self.event_type,
            occurred_at=self.at,
            book=self.book,
        )

    def transfer(
        self, debit: str, credit: str, amount_minor: int, currency: str, code: TransferCode
    ) -> Transfer:
        """A transfer of this cause, with a deterministic id (cause and sequence number)."""
        return Transfer(
            transfer_id=f"{self.cause_id}#{next(self._transfer_numbers)}",
            debit=debit,
            credit=credit,
            amount_minor=amount_minor,
            currency=currency,
            code=code,
            event_id=self.event_id,
            occurred_at=self.at,
        )

    def post(self, transfers: list[Transfer]) -> None:
        """Post the non-zero transfers of a decision, atomically."""
        moving = [transfer for transfer in transfers if transfer.amount_minor > 0]
        if moving:
            self.book.post(moving)

    def post_legs(self, legs: Sequence[Leg], currency: str) -> None:
        """Post a decision's legs, all or none, as transfers of this cause."""
        self.post(
            [
                self.transfer(leg.debit, leg.credit, leg.amount_minor, currency, leg.code)
                for leg in legs
            ]
        )

    def notify(
        self, recipients: list[str], data: NotificationData, *, key: str | None = None
    ) -> Notification:
        """Write a notification to the outbox; the relay publishes it after commit.

        Its id is `<cause>:<type>` (plus `key` when one cause emits several of a type), so a
        cause that is handled again yields the same id and consumers can drop the copy.
        """
        suffix = f":{key}" if key else ""
        notification = Notification.build(
            notification_id=f"{self.cause_id}:{NOTIFICATION_TYPE_OF[type(data)]}{suffix}",
            occurred_at=self.at,
            recipients=sorted(set(recipients)),
            data=data,
        )
        _OUTBOX_INSERT.write(
            self.conn,
            {
                "notification_id": notification.notification_id,
                "type": notification.type,
                "occurred_at": notification.occurred_at,
                "body": json.dumps(notification.model_dump(mode="json"), sort_keys=True),
                "event_id": self.event_id,
                "contract_id": self.contract_id,
            },
        )
        return notification

    def reject(
        self,
        reason: ReasonCode,
        recipients: list[str],
        data: NotificationData | None = None,
        *,
        subject_id: str | None = None,
        detail: str = "",
    ) -> Rejected:
        """Refuse the event: tell `recipients` why and return the `Rejected` outcome.

        Without `data` the notice is the generic `event.rejected`, for events that have no
        `*.rejected` notification of their own (a release, a withdrawal, a cash-out).
        """
        notice = data or EventRejected(
            event_id=self.event_id, event_type=self.event_type, subject_id=subject_id, reason=reason
        )
        self.notify(recipients or ["support"], notice)
        return Rejected(reason, detail)

    def schedule(
        self, kind: str, subject_id: str, due_at: datetime, *, contract_id: str | None = None
    ) -> None:
        """Store a deadline that a later tick fires once (never Dramatiq's `delay=`)."""
        schedule_deadline(
            self.conn,
            Deadline(
                kind=kind,
                subject_id=subject_id,
                due_at=due_at,
                contract_id=contract_id or self.contract_id,
                created_by_event=self.event_id,
            ),
        )
