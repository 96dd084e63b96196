"""How an envelope travels: queue names, and Dramatiq's wire format spelled out without Dramatiq.

The workers consume with Dramatiq's RabbitMQ broker, so an upstream message must be exactly
what `dramatiq.Message.encode()` would produce, on queues declared with exactly the arguments
Dramatiq 2.2 declares them with: RabbitMQ refuses a second declaration whose arguments differ
(PRECONDITION_FAILED). Nothing here imports Dramatiq, so that a publishing service needs only
pika, and a service in another language can follow the same recipe (see asyncapi.yaml).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, Final

EVENTS_QUEUE: Final = "refunds.events"
"""Every inbound event except ticks."""

TICKS_QUEUE: Final = "refunds.ticks"
"""`deadline.tick` only, so that a backlog of events never delays deadlines."""

NOTIFICATIONS_EXCHANGE: Final = "refunds.notifications"
"""Topic exchange of outbound notifications; the routing key is the notification type."""

EVENT_ACTOR: Final = "handle_event"
TICK_ACTOR: Final = "handle_tick"

TICK_TYPE: Final = "deadline.tick"

PERSISTENT: Final = 2
"""AMQP delivery mode 2: the broker writes the message to disk before it confirms."""

DEAD_MESSAGE_TTL_MS: Final = int(
    os.getenv("dramatiq_dead_message_ttl", str(86400000 * 7))  # noqa: SIM112 (Dramatiq's name)
)
"""Dramatiq's `x-message-ttl` of the `.XQ` queues, read from the same environment variable
Dramatiq reads, so both sides declare the same value."""


def delay_queue(queue: str) -> str:
    """Where Dramatiq parks messages sent with `delay=` (retries with backoff)."""
    return f"{queue}.DQ"


def dead_letter_queue(queue: str) -> str:
    """Where RabbitMQ puts what a worker rejects, and messages Dramatiq cannot decode."""
    return f"{queue}.XQ"


def route_for(event_type: str) -> tuple[str, str]:
    """The (queue, actor) an inbound event of this type is sent to."""
    if event_type == TICK_TYPE:
        return TICKS_QUEUE, TICK_ACTOR
    return EVENTS_QUEUE, EVENT_ACTOR


def queue_arguments(queue: str) -> dict[str, Any]:
    """Arguments of the work queue and of its `.DQ`, as Dramatiq declares them.

    Dramatiq adds `x-max-priority` only when its broker is built with `max_priority`; the
    workers build it without, and this must change together with them if that ever changes.
    """
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue(queue),
    }


def dead_letter_queue_arguments() -> dict[str, Any]:
    """Arguments of a `.XQ` queue, as Dramatiq declares them."""
    return {"x-message-ttl": DEAD_MESSAGE_TTL_MS}


def queue_declarations(queue: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (name, arguments) Dramatiq declares, durable, for one of its queues."""
    return [
        (queue, queue_arguments(queue)),
        (delay_queue(queue), queue_arguments(queue)),
        (dead_letter_queue(queue), dead_letter_queue_arguments()),
    ]


def new_message_id() -> str:
    """A transport message id as Dramatiq makes them. Duplicates are judged by `event_id`."""
    return str(uuid.uuid4())


def dramatiq_message_body(
    envelope: object,
    queue: str,
    actor: str,
    message_id: str,
    *,
    message_timestamp_ms: int | None = None,
) -> bytes:
    """The AMQP body of a Dramatiq message that calls `actor(envelope)` from `queue`.

    Byte for byte what `dramatiq.Message(...).encode()` produces with Dramatiq's default JSON
    encoder: compact JSON of the seven fields, in Dramatiq's field order. `envelope` is sent as
    given (any JSON value), so a test can wrap a malformed envelope deliberately. The result
    depends only on the arguments when `message_timestamp_ms` is given; otherwise it is now.
    """
    if message_timestamp_ms is None:
        message_timestamp_ms = int(time.time() * 1000)
    fields: dict[str, Any] = {
        "queue_name": queue,
        "actor_name": actor,
        "args": [envelope],
        "kwargs": {},
        "options": {},
        "message_id": message_id,
        "message_timestamp": message_timestamp_ms,
    }
    return json.dumps(fields, separators=(",", ":")).encode("utf-8")
