"""The broker's order survives a failover of the intake consumer (MESSAGES.md, Ordering 1).

Two intake consumers share `refunds.intake` (single active consumer), as two worker processes
do. The active one holds unacked messages when the database refuses its batch for a while, or
when it is stopped: either way the log must hold the messages in the order they were
published. A consumer that cancels before its channel closes (pika's `close()`) can let the
standby receive the messages behind its own first, and the log come out of order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pika
import pytest
from ordered_driver import wait_until
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from messages.publisher import EventPublisher
from messages.transport import declare_intake
from workers.intake.consumer import IntakeConsumer
from workers.intake.producers import Producers
from workers.intake.service import Delivery, Intake
from workers.intake.tables import event_log

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

MESSAGES = 400
QUEUED_FIRST = 40
BATCH = 4  # a prefetch of 8: most messages wait in the queue behind the active consumer's


def envelope(number: int) -> dict[str, Any]:
    return {
        "event_id": f"failover-e{number:04d}",
        "type": "contract.opened",
        "occurred_at": "2031-03-10T17:55:00Z",
        "schema_version": 1,
        "data": {
            "contract_id": f"failover-c{number}",
            "kind": "fixed",
            "client_id": "client-1",
            "creator_id": "dev-1",
            "currency": "USD",
            "policy": "spectrum",
        },
    }


class RefusingIntake(Intake):
    """An intake whose database refuses every batch while `refusing` is set. The first refusal
    waits for `release`, so that the test can have the standby subscribe while this consumer
    holds its batch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refusing = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()
        self.refused = 0

    def receive(self, deliveries: Sequence[Delivery]) -> None:
        if self.refusing.is_set():
            self.holding.set()
            self.release.wait(30)
            self.refused += 1
            raise OperationalError("INSERT", {}, Exception("terminating connection"))
        super().receive(deliveries)


class Publishing:
    """Publishes the envelopes from a thread of its own, confirmed one by one: the first
    `QUEUED_FIRST` before any consumer starts, the rest while the test makes the active consumer
    fail (a publish is what makes the queue deliver to a consumer it just made active)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[str] = []
        self.go_on = threading.Event()
        connection = pika.BlockingConnection(pika.URLParameters(url))
        declare_intake(connection.channel())
        connection.close()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_until(lambda: len(self.ids) >= QUEUED_FIRST, "the first envelopes to be queued")

    def _run(self) -> None:
        with EventPublisher(self.url) as publisher:
            for number in range(MESSAGES):
                if number == QUEUED_FIRST:
                    self.go_on.wait(60)
                body = envelope(number)
                publisher.publish(body)
                self.ids.append(body["event_id"])
                if number >= QUEUED_FIRST:
                    time.sleep(0.005)

    def finished(self) -> list[str]:
        self.thread.join(timeout=60)
        assert len(self.ids) == MESSAGES
        return self.ids


def logged_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(event_log.c.event_id).order_by(event_log.c.seq)).scalars())


def start(consumer: IntakeConsumer) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    wait_until(consumer.consuming.is_set, "the consumer to subscribe")
    return stop, thread


def intakes(engine: Engine) -> tuple[RefusingIntake, Intake]:
    producers = Producers("guest")
    first = RefusingIntake(engine, producers, nudge=lambda _partitions: None)
    second = Intake(engine, producers, nudge=lambda _partitions: None)
    return first, second


def test_a_batch_the_database_refuses_for_a_while_keeps_its_place(
    rabbit_url: str, pg_engine: Engine
) -> None:
    publishing = Publishing(rabbit_url)
    active_intake, standby_intake = intakes(pg_engine)
    active_intake.refusing.set()
    stops = [start(IntakeConsumer(rabbit_url, active_intake, batch_size=BATCH))]
    wait_until(active_intake.holding.is_set, "the active consumer to hold a batch")
    stops.append(start(IntakeConsumer(rabbit_url, standby_intake, batch_size=BATCH)))
    publishing.go_on.set()
    active_intake.release.set()
    wait_until(lambda: active_intake.refused >= 2, "the database to refuse the batch twice")
    active_intake.refusing.clear()
    wait_until(lambda: len(logged_ids(pg_engine)) >= MESSAGES, "every message in the log")
    for stop, thread in stops:
        stop.set()
        thread.join(timeout=10)
    assert logged_ids(pg_engine) == publishing.finished()


def test_a_consumer_stopped_with_unacked_messages_hands_them_back_in_place(
    rabbit_url: str, pg_engine: Engine
) -> None:
    publishing = Publishing(rabbit_url)
    active_intake, standby_intake = intakes(pg_engine)
    # The active consumer's database is away: it holds its prefetch unacked when it stops.
    active_intake.refusing.set()
    active_stop, active_thread = start(IntakeConsumer(rabbit_url, active_intake, batch_size=BATCH))
    wait_until(active_intake.holding.is_set, "the active consumer to hold a batch")
    standby_stop, standby_thread = start(
        IntakeConsumer(rabbit_url, standby_intake, batch_size=BATCH)
    )
    publishing.go_on.set()
    active_stop.set()
    active_intake.release.set()
    active_thread.join(timeout=10)
    assert not active_thread.is_alive()
    wait_until(lambda: len(logged_ids(pg_engine)) >= MESSAGES, "every message in the log")
    standby_stop.set()
    standby_thread.join(timeout=10)
    assert logged_ids(pg_engine) == publishing.finished()
