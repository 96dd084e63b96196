"""How an envelope travels (MESSAGES.md, "Transport"): names and the message a producer sends.

A producer publishes the envelope's JSON, nothing around it, to the `refunds.events` exchange
with the envelope's ordering key as routing key, its own broker user as `user_id`, and waits
for the broker's confirm. The engine declares the exchange and what is behind it; a producer
never declares, binds or consumes anything. Nothing here imports Dramatiq: how the engine uses
it inside is not part of the contract.
"""

from __future__ import annotations

from typing import Any, Final

EVENTS_EXCHANGE: Final = "refunds.events"
"""Where every inbound message is published, ticks included."""

INTAKE_QUEUE: Final = "refunds.intake"
"""The engine's queue behind `refunds.events`: one consumer at a time reads it, in order."""

INTAKE_QUEUE_ARGUMENTS: Final[dict[str, Any]] = {"x-single-active-consumer": True}
"""RabbitMQ delivers to one consumer of the queue at a time and fails over to the next, so the
order the broker received messages in is the order the intake reads them in."""

NOTIFICATIONS_EXCHANGE: Final = "refunds.notifications"
"""Topic exchange of outbound notifications; the routing key is the notification type."""

TICK_TYPE: Final = "deadline.tick"

PERSISTENT: Final = 2
"""AMQP delivery mode 2: the broker writes the message to disk before it confirms."""

CONTENT_TYPE: Final = "application/json"


def declare_intake(channel: Any) -> None:
    """Declare the exchange producers publish to, the intake queue and the binding between
    them (the engine's part; idempotent). Every routing key reaches the one queue, whose order
    is the broker's order of receipt."""
    channel.exchange_declare(exchange=EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(queue=INTAKE_QUEUE, durable=True, arguments=INTAKE_QUEUE_ARGUMENTS)
    channel.queue_bind(queue=INTAKE_QUEUE, exchange=EVENTS_EXCHANGE, routing_key="#")
