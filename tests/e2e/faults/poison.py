"""Poison: messages no worker can apply, each of which must end in a dead-letter queue with a
reason and leave the books alone.

Most are well-formed Dramatiq messages around an envelope that breaks the contract
(MESSAGES.md: wrong types, an unknown type, ids of 10,000 characters, amounts past 2^63, a
body of a megabyte...), so the worker's failure policy dead-letters them as `malformed`. Two
are not even JSON, so Dramatiq itself rejects them undecoded and RabbitMQ dead-letters them:
the reader of the queue names those `undecodable`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from messages.transport import (
    EVENT_ACTOR,
    EVENTS_QUEUE,
    TICK_ACTOR,
    TICKS_QUEUE,
    dramatiq_message_body,
)

MEGABYTE = 1024 * 1024
POISON_TIME_MS = 1_900_000_000_000
"""A fixed Dramatiq timestamp, so that the same poison is the same bytes in every run."""


@dataclass(frozen=True, slots=True)
class Poison:
    name: str
    body: bytes
    queue: str
    message_id: str | None
    """The Dramatiq message id inside the body, or None for a body that is not one."""
    reasons: frozenset[str]
    """The dead-letter reasons that are right for it."""
    event_id: str | None = None
    """The envelope's event id, when it has a readable one: it must never reach the inbox."""


def _envelope(event_id: str, **changes: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "event_id": event_id,
        "type": "milestone.funded",
        "occurred_at": "2031-03-04T10:00:00Z",
        "schema_version": 1,
        "data": {
            "contract_id": "poison-contract",
            "milestone_id": "poison-milestone",
            "payment_id": "poison-payment",
            "amount_minor": 12_000,
            "processor_fee_minor": 378,
        },
    }
    data = changes.pop("data", {})
    envelope.update(changes)
    envelope["data"] = {**envelope["data"], **data}
    return envelope


def _wrapped(
    name: str,
    envelope: Any,
    *,
    queue: str = EVENTS_QUEUE,
    actor: str = EVENT_ACTOR,
    args: list[Any] | None = None,
) -> Poison:
    message_id = f"poison-{name}"
    body = dramatiq_message_body(
        envelope, queue, actor, message_id, message_timestamp_ms=POISON_TIME_MS
    )
    if args is not None:
        fields = json.loads(body)
        fields["args"] = args
        body = json.dumps(fields, separators=(",", ":")).encode()
    event_id = envelope.get("event_id") if isinstance(envelope, dict) else None
    return Poison(
        name,
        body,
        queue,
        message_id,
        frozenset({"malformed"}),
        event_id if isinstance(event_id, str) else None,
    )


def poison_messages() -> list[Poison]:
    """One of every kind of poison, in a fixed order."""
    tick_on_events = _envelope("poison-tick-queue", type="milestone.funded")
    return [
        Poison(
            "malformed-json",
            b'{"queue_name":"refunds.events","actor_name":"handle_event","args":[{"event_id":',
            EVENTS_QUEUE,
            None,
            frozenset({"undecodable"}),
        ),
        Poison(
            "binary-megabyte",
            bytes(range(256)) * (MEGABYTE // 256),
            EVENTS_QUEUE,
            None,
            frozenset({"undecodable"}),
        ),
        _wrapped(
            "string-amount", _envelope("poison-string-amount", data={"amount_minor": "12000"})
        ),
        _wrapped("float-amount", _envelope("poison-float-amount", data={"amount_minor": 120.5})),
        _wrapped("unknown-type", _envelope("poison-unknown-type", type="refund.cancelled")),
        _wrapped(
            "megabyte-field",
            _envelope("poison-megabyte-field", data={"contract_id": "c" * MEGABYTE}),
        ),
        _wrapped("event-id-10000", _envelope("e" * 10_000)),
        _wrapped(
            "contract-id-10000", _envelope("poison-contract-id", data={"contract_id": "c" * 10_000})
        ),
        _wrapped("amount-2-63", _envelope("poison-amount-2-63", data={"amount_minor": 2**63})),
        _wrapped("fee-2-70", _envelope("poison-fee-2-70", data={"processor_fee_minor": 2**70})),
        _wrapped("naive-time", _envelope("poison-naive-time", occurred_at="2031-03-04T10:00:00")),
        _wrapped("not-an-object", _envelope("poison-list"), args=[[1, 2, 3]]),
        _wrapped(
            "two-arguments",
            _envelope("poison-two-args"),
            args=[_envelope("poison-two-args"), _envelope("poison-two-args")],
        ),
        _wrapped("event-on-ticks", tick_on_events, queue=TICKS_QUEUE, actor=TICK_ACTOR),
        Poison(
            "unknown-actor",
            dramatiq_message_body(
                _envelope("poison-unknown-actor"),
                EVENTS_QUEUE,
                "handle_nothing",
                "poison-unknown-actor",
                message_timestamp_ms=POISON_TIME_MS,
            ),
            EVENTS_QUEUE,
            "poison-unknown-actor",
            frozenset({"unknown_actor"}),
            "poison-unknown-actor",
        ),
    ]
