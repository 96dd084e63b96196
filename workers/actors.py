"""The two actors: `handle_event` on `refunds.events` and `handle_tick` on `refunds.ticks`.

Thin on purpose: take the one envelope argument, hand it to the processor (validate, one unit
of work around `policy.apply.apply_event`, commit), return so Dramatiq acks. Every failure is
judged by the `FailurePolicy` middleware. The actors are declared on a broker passed in, not on
Dramatiq's global one, so a process (or a test) can hold several runtimes side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq import Broker

from messages import MalformedMessage
from messages.transport import EVENT_ACTOR, EVENTS_QUEUE, TICK_ACTOR, TICK_TYPE, TICKS_QUEUE
from policy.apply import ApplyResult
from policy.errors import IdempotencyConflict, UnknownSubject

Processor = Callable[[object], ApplyResult]

EXPECTED_FAILURES = (MalformedMessage, IdempotencyConflict, UnknownSubject)
"""Failures the policy handles by design: Dramatiq logs them in a line, not a traceback."""


@dataclass(frozen=True, slots=True)
class Actors:
    event: dramatiq.Actor[..., None]
    tick: dramatiq.Actor[..., None]


def only_envelope(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> object:
    """The envelope of a message, which must be its one positional argument (MESSAGES.md)."""
    if len(args) != 1 or kwargs:
        raise MalformedMessage(
            [("args", f"expected one positional argument, the envelope; got {len(args)}")]
            if not kwargs
            else [("kwargs", "expected none; the envelope is the one positional argument")]
        )
    return args[0]


def declare_actors(broker: Broker, process: Processor) -> Actors:
    def handle_event(*args: Any, **kwargs: Any) -> None:
        process(only_envelope(args, kwargs))

    def handle_tick(*args: Any, **kwargs: Any) -> None:
        envelope = only_envelope(args, kwargs)
        if not isinstance(envelope, dict) or envelope.get("type") != TICK_TYPE:
            raise MalformedMessage([("type", f"{TICKS_QUEUE} carries only {TICK_TYPE}")])
        process(envelope)

    def declare(name: str, queue: str, body: Callable[..., None]) -> dramatiq.Actor[..., None]:
        decorate = dramatiq.actor(
            broker=broker, actor_name=name, queue_name=queue, throws=EXPECTED_FAILURES
        )
        return decorate(body)

    return Actors(
        event=declare(EVENT_ACTOR, EVENTS_QUEUE, handle_event),
        tick=declare(TICK_ACTOR, TICKS_QUEUE, handle_tick),
    )
