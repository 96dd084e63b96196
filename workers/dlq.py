"""The dead-letter queues `refunds.events.XQ` and `refunds.ticks.XQ`: writing a letter with its
reason, reading letters back, sending them back to work, purging.

Why a dead letter is *copied* to the XQ rather than rejected there: Dramatiq dead-letters a
message with `basic_nack(requeue=False)`, and RabbitMQ then moves the body *as it was
delivered*. Anything a middleware writes into `message.options` during the failing attempt is
lost, so the reason would never reach the queue. The worker instead publishes the message,
re-encoded with the reason in its options, to the XQ with a publisher confirm, and lets Dramatiq
ack the original. A crash between the two delivers the original again; it fails the same way
and is copied again, so a letter may appear twice but is never lost.

Dramatiq still nacks on its own a body it cannot decode, or one for an actor it does not know:
those letters carry no reason of ours, and the reader names them `undecodable` or
`unknown_actor` (`no_reason_recorded` for any other letter without one). The StubBroker of
the embedded mode keeps the failed message object itself in `broker.dead_letters`, options
included, so there a plain nack is enough.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

import pika
import pika.exceptions
from dramatiq import Broker, Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import q_name, xq_name
from dramatiq.errors import ConnectionClosed

from messages.transport import EVENT_ACTOR, EVENTS_QUEUE, TICK_ACTOR, TICKS_QUEUE, dead_letter_queue
from workers.errors import ConfigurationError, DeadLetterError

REASON = "dead_letter_reason"
ERROR = "dead_letter_error"
AT = "dead_lettered_at"
FIRST_FAILED_AT = "first_failed_at"
LAST_ERROR = "last_error"

DEAD_LETTER_QUEUES = (dead_letter_queue(EVENTS_QUEUE), dead_letter_queue(TICKS_QUEUE))

_FAILURE_OPTIONS = (
    REASON,
    ERROR,
    AT,
    FIRST_FAILED_AT,
    LAST_ERROR,
    "retries",
    "eta",
    "traceback",
    "requeue_timestamp",
)
"""What a failed run left in a message's options; a retried letter starts afresh without it."""

MAX_ERROR_CHARS = 2000
PERSISTENT = 2
NOT_FOUND = 404


def write_dead_letter(
    broker: Broker, message: MessageProxy, reason: str, error: str, *, at_ms: int
) -> None:
    """Record `reason` in the message and move it to its XQ (see the module docstring).

    Raises `DeadLetterError` when RabbitMQ did not confirm the copy; the caller then falls back
    to a plain nack, which keeps the message (without its reason) rather than dropping it.
    """
    message.options[REASON] = reason
    message.options[ERROR] = error[:MAX_ERROR_CHARS]
    message.options[AT] = at_ms
    if not isinstance(broker, RabbitmqBroker):
        message.fail()
        return
    # The broker's own enqueue: persistent, confirmed, mandatory, and it reconnects when this
    # thread's publishing connection went stale while the thread was busy consuming.
    copy = cast("Message[Any]", message).copy(queue_name=xq_name(q_name(message.queue_name)))
    try:
        broker.enqueue(copy)
    except ConnectionClosed as exc:
        raise DeadLetterError(f"could not dead-letter {message.message_id}: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One letter of an XQ, as an operator wants to see it."""

    queue: str
    message_id: str | None
    actor_name: str | None
    reason: str
    error: str
    dead_lettered_at: datetime | None
    retries: int
    event_id: str | None
    event_type: str | None
    body: bytes

    @property
    def origin_queue(self) -> str:
        """The work queue the letter came from, where a retry sends it back."""
        return q_name(self.queue)

    def as_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "message_id": self.message_id,
            "actor_name": self.actor_name,
            "reason": self.reason,
            "error": self.error,
            "dead_lettered_at": (
                self.dead_lettered_at.isoformat().replace("+00:00", "Z")
                if self.dead_lettered_at
                else None
            ),
            "retries": self.retries,
            "event_id": self.event_id,
            "event_type": self.event_type,
        }


def read_dead_letter(queue: str, body: bytes) -> DeadLetter:
    """Make sense of one XQ body, whoever put it there."""
    try:
        fields = json.loads(body)
        if not isinstance(fields, dict):
            raise TypeError("not an object")
        options = fields.get("options") or {}
        if not isinstance(options, dict):
            raise TypeError("options is not an object")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        return DeadLetter(
            queue=queue,
            message_id=None,
            actor_name=None,
            reason="undecodable",
            error=f"not a Dramatiq message: {exc}",
            dead_lettered_at=None,
            retries=0,
            event_id=None,
            event_type=None,
            body=body,
        )
    envelope = _first_arg(fields)
    reason = options.get(REASON) or _unrecorded_reason(fields.get("actor_name"))
    error = options.get(ERROR) or options.get(LAST_ERROR) or ""
    at_ms = options.get(AT)
    retries = options.get("retries")
    return DeadLetter(
        queue=queue,
        message_id=_text(fields.get("message_id")),
        actor_name=_text(fields.get("actor_name")),
        reason=str(reason),
        error=str(error),
        dead_lettered_at=(
            datetime.fromtimestamp(at_ms / 1000, tz=UTC) if isinstance(at_ms, int) else None
        ),
        retries=retries if isinstance(retries, int) else 0,
        event_id=_text(envelope.get("event_id")),
        event_type=_text(envelope.get("type")),
        body=body,
    )


def _unrecorded_reason(actor_name: object) -> str:
    """Why a letter that carries no reason of ours was dead-lettered, as far as it tells."""
    # Dramatiq's consumer nacks a message for an actor no worker declares (ActorNotFound)
    # before any middleware runs, so no reason could be written into it; the actor says it.
    return "no_reason_recorded" if actor_name in (EVENT_ACTOR, TICK_ACTOR) else "unknown_actor"


def retry_body(body: bytes) -> bytes:
    """The letter as a fresh message for its work queue: no failure history, no eta."""
    fields = json.loads(body)
    options = {
        key: value
        for key, value in (fields.get("options") or {}).items()
        if key not in _FAILURE_OPTIONS
    }
    fields["queue_name"] = q_name(fields["queue_name"])
    fields["options"] = options
    fields["args"] = tuple(fields.get("args") or ())
    return Message(**fields).encode()


def _first_arg(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    args = fields.get("args")
    if isinstance(args, list) and args and isinstance(args[0], dict):
        return args[0]
    return {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


ConnectionFactory = Callable[[pika.connection.Parameters], pika.BlockingConnection]


class DeadLetterQueues:
    """Inspect and act on the XQs of a RabbitMQ vhost (the `recourse dlq` commands)."""

    def __init__(
        self, url: str | None, *, connection_factory: ConnectionFactory = pika.BlockingConnection
    ) -> None:
        if not url:
            raise ConfigurationError(
                "dead-letter queues live in RabbitMQ: set BROKER_URL (the embedded StubBroker "
                "keeps its dead letters in memory)"
            )
        self._connection = connection_factory(pika.URLParameters(url))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()

    def depth(self, queue: str) -> int:
        channel = self._connection.channel()
        try:
            count: int = channel.queue_declare(queue=queue, passive=True).method.message_count
            return count
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == NOT_FOUND:
                return 0
            raise
        finally:
            if channel.is_open:
                channel.close()

    def peek(self, queue: str) -> list[DeadLetter]:
        """Every letter of `queue`, left where it is and in its order."""
        letters: list[DeadLetter] = []

        def keep(letter: DeadLetter) -> bool:
            letters.append(letter)
            return False

        self._walk(queue, keep)
        return letters

    def find(self, message_id: str) -> DeadLetter | None:
        for queue in DEAD_LETTER_QUEUES:
            for letter in self.peek(queue):
                if letter.message_id == message_id:
                    return letter
        return None

    def retry(self, queue: str, message_ids: set[str] | None = None) -> int:
        """Send the chosen letters (all when `message_ids` is None) back to their work queue.

        Each is published with a confirm before its letter is acked, so a failure in between
        leaves a copy in both places, never in neither. An undecodable letter stays.
        """
        publisher = self._connection.channel()
        publisher.confirm_delivery()

        def send_back(letter: DeadLetter) -> bool:
            if letter.message_id is None:
                return False
            if message_ids is not None and letter.message_id not in message_ids:
                return False
            publisher.basic_publish(
                exchange="",
                routing_key=letter.origin_queue,
                body=retry_body(letter.body),
                properties=pika.BasicProperties(
                    delivery_mode=PERSISTENT,
                    content_type="application/json",
                    message_id=letter.message_id,
                ),
                mandatory=True,
            )
            return True

        try:
            return self._walk(queue, send_back)
        except pika.exceptions.AMQPError as exc:
            raise DeadLetterError(f"retry from {queue} stopped: {exc!r}") from exc
        finally:
            if publisher.is_open:
                publisher.close()

    def purge(self, queue: str) -> int:
        """Drop every letter of `queue`; returns how many there were (0 if it does not exist
        yet: no worker has declared it)."""
        channel = self._connection.channel()
        try:
            purged: int = channel.queue_purge(queue).method.message_count
            return purged
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == NOT_FOUND:
                return 0
            raise
        finally:
            if channel.is_open:
                channel.close()

    def _walk(self, queue: str, take: Callable[[DeadLetter], bool]) -> int:
        """Get each letter present now; ack those `take` returns True for, put back the rest.

        Only the letters present at the start are visited, so letters put back are not seen
        twice and letters that arrive meanwhile wait for the next walk.
        """
        count = self.depth(queue)
        channel = self._connection.channel()
        taken = 0
        try:
            for _ in range(count):
                method, _, body = channel.basic_get(queue=queue, auto_ack=False)
                if method is None:
                    break
                letter = read_dead_letter(queue, body)
                if take(letter):
                    channel.basic_ack(method.delivery_tag)
                    taken += 1
        finally:
            if channel.is_open:
                # Closing the channel returns every unacked letter to its place in the queue.
                channel.close()
        return taken
