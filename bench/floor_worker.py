"""The floor of the design card's stack: Dramatiq actors on RabbitMQ doing nothing but the
reference transaction (`bench.reference`), started by `python -m dramatiq bench.floor_worker`.

It consumes the engine's queues and message format (`refunds.events` -> `handle_event`,
`refunds.ticks` -> `handle_tick`), with confirms on, no middleware, one psycopg connection a
thread, and no policy, no SQLAlchemy and no validation. What it reaches, divided by the
reference loop, is the most any engine built on Dramatiq, pika and RabbitMQ could reach on this
machine: the cost of the transport with none of the engine's own work.

`FLOOR_DSN` is the database (migrated, with the reference accounts open) and `FLOOR_ACCOUNTS`
their ids, comma-separated.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dramatiq
import psycopg
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from bench.reference import reference_transaction
from messages.transport import EVENT_ACTOR, EVENTS_QUEUE, TICK_ACTOR, TICKS_QUEUE

# No middleware, so no retries: the reference transaction has nothing to wait for, and a failed
# one is dead-lettered at once; the benchmark then times out waiting for it, and the kept logs
# (`bench.deployment.worker_logs`) say why.
_broker = RabbitmqBroker(url=os.environ["BROKER_URL"], confirm_delivery=True, middleware=[])
dramatiq.set_broker(_broker)

_local = threading.local()
_accounts = [int(number) for number in os.environ["FLOOR_ACCOUNTS"].split(",")]


def _connection() -> psycopg.Connection[Any]:
    connection: psycopg.Connection[Any] | None = getattr(_local, "connection", None)
    if connection is None:
        connection = psycopg.connect(os.environ["FLOOR_DSN"])
        _local.connection = connection
    return connection


def _apply(envelope: dict[str, Any]) -> None:
    # The event id is unique in the workload, so it keys the transaction as it keys the inbox.
    reference_transaction(_connection(), str(envelope["event_id"]), _accounts)


@dramatiq.actor(actor_name=EVENT_ACTOR, queue_name=EVENTS_QUEUE)
def handle_event(envelope: dict[str, Any]) -> None:
    _apply(envelope)


@dramatiq.actor(actor_name=TICK_ACTOR, queue_name=TICKS_QUEUE)
def handle_tick(envelope: dict[str, Any]) -> None:
    _apply(envelope)
