"""A test driver for the engine: feeds events through `apply_event`, one transaction each, as
a worker would, and reads back balances and notifications."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from ledger import Book
from messages import parse_event
from policy.apply import ApplyResult, apply_event
from policy.config import load_policies
from policy.tables import outbox
from store.pipelining import deferred_writes

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Driver:
    def __init__(self, engine: Engine, *, start: datetime = START) -> None:
        self.engine = engine
        self.policies = load_policies()
        self.at = start
        self._ids = itertools.count(1)

    def send(self, type_: str, *, at: datetime | None = None, **data: Any) -> ApplyResult:
        """Apply one event at `at`, or an hour after the one before it."""
        self.at = at if at is not None else self.at + timedelta(hours=1)
        body = {
            "event_id": f"evt-{next(self._ids)}",
            "type": type_,
            "occurred_at": self.at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        with self.engine.begin() as conn, deferred_writes(conn):
            return apply_event(conn, parse_event(body), self.policies)

    def fund_one_milestone(self, amount_minor: int, processor_fee_minor: int = 0) -> None:
        """Contract c1 (client u1, creator u2, USD, spectrum) with milestone m1 funded by p1."""
        self.send(
            "contract.opened",
            contract_id="c1",
            kind="fixed",
            client_id="u1",
            creator_id="u2",
            currency="USD",
            policy="spectrum",
        )
        self.send(
            "milestone.funded",
            contract_id="c1",
            milestone_id="m1",
            payment_id="p1",
            amount_minor=amount_minor,
            processor_fee_minor=processor_fee_minor,
        )

    def balance(self, name: str, currency: str = "USD") -> int:
        with self.engine.begin() as conn:
            return Book(conn).balance(name, currency).available_minor

    def notifications(self, type_: str) -> list[dict[str, Any]]:
        """The bodies of the notifications of `type_` in the outbox, oldest first."""
        with self.engine.begin() as conn:
            bodies = conn.execute(
                select(outbox.c.body).where(outbox.c.type == type_).order_by(outbox.c.seq)
            )
            return [json.loads(body) for (body,) in bodies]


def send_side_by_side(
    sends: dict[int, Callable[[], ApplyResult]], *, timeout_s: float = 30.0
) -> dict[int, str | BaseException]:
    """Run each of `sends` in a thread of its own, at once; each one's status, or what it
    raised (a deadlock, raised in its thread, is what the lock-order tests look for)."""
    outcomes: dict[int, str | BaseException] = {}

    def run(key: int) -> None:
        try:
            outcomes[key] = sends[key]().status
        except BaseException as exc:
            outcomes[key] = exc

    threads = [threading.Thread(target=run, args=(key,)) for key in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_s)
    return outcomes
