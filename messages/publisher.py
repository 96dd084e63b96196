"""The publisher for upstream services: validated envelopes onto the `refunds.events` exchange.

Each envelope goes as MESSAGES.md's "Transport" says: its JSON alone as the body, its ordering
key as routing key, `user_id` set to the connection's broker user, persistent, `mandatory`, and
the publish waits for RabbitMQ's confirm, so a return means the broker has the message on disk.
A dropped connection or channel is re-opened and the same body sent again, a bounded number of
times with backoff; a resend after a lost confirm can deliver a copy twice, which the engine
drops by `event_id`. One publisher keeps its messages on one channel, so the events of a key
reach the engine in the order they were published.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import pika
import pika.exceptions

from messages.errors import PublishError
from messages.inbound import Envelope
from messages.ordering import ordering_key
from messages.registry import parse_event
from messages.transport import CONTENT_TYPE, EVENTS_EXCHANGE, PERSISTENT

log = logging.getLogger(__name__)

ConnectionFactory = Callable[[pika.connection.Parameters], pika.BlockingConnection]

_PERMANENT_REPLY_CODES = frozenset({403, 404, 406})
"""ACCESS_REFUSED, NOT_FOUND, PRECONDITION_FAILED: the same request would fail again."""

_PERMANENT_CONNECTION_REPLY_CODES = frozenset({403, 530})
"""ACCESS_REFUSED, NOT_ALLOWED (no such vhost)."""

_BLOCKED_CONNECTION_TIMEOUT_S = 30.0
"""A broker under a memory or disk alarm blocks publishers; give up on it and retry instead of
waiting for ever."""


class EventPublisher:
    """Publishes inbound envelopes to `refunds.events`, with confirms, for one thread.

    Use it as a context manager, or call `close()`. A pika connection must not be shared
    between threads; the lock only keeps a mistaken second thread from corrupting it.
    """

    def __init__(
        self,
        url: str,
        *,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        connection_factory: ConnectionFactory = pika.BlockingConnection,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._parameters = pika.URLParameters(url)
        if self._parameters.blocked_connection_timeout is None:
            self._parameters.blocked_connection_timeout = _BLOCKED_CONNECTION_TIMEOUT_S
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._connection_factory = connection_factory
        self._sleep = sleep
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def publish(self, envelope: Mapping[str, Any] | Envelope | str | bytes) -> str:
        """Validate `envelope`, send it under its ordering key, wait for the confirm; return
        the ordering key it went with.

        `envelope` is a decoded JSON object, its JSON text, or an `Envelope` model.

        Raises `MalformedMessage` (nothing is sent) when the envelope breaks the contract, and
        `PublishError` when the broker did not confirm it after every attempt.
        """
        raw = envelope.model_dump(mode="json") if isinstance(envelope, Envelope) else envelope
        event = parse_event(raw)
        # The canonical form (UTC `Z` times, no nulls for absent optional fields) makes two
        # publishes of one event byte-identical whatever spelling the caller used.
        body = json.dumps(
            event.model_dump(mode="json", exclude_none=True), separators=(",", ":")
        ).encode("utf-8")
        key = ordering_key(event)
        self._send(key, body, event.event_id)
        return key

    def publish_raw(self, body: bytes, *, routing_key: str, user_id: str | None = "") -> None:
        """Send `body` under `routing_key` exactly as given, unchecked: for tests that need
        poison. `user_id` defaults to the connection's user; None leaves it out."""
        self._send(routing_key, body, None, user_id=user_id)

    @property
    def user(self) -> str:
        """The broker user this publisher connects as: the `user_id` of what it sends."""
        user: str = self._parameters.credentials.username
        return user

    def close(self) -> None:
        """Close the connection; publishing afterwards raises `PublishError`."""
        with self._lock:
            self._closed = True
            self._drop_connection()

    def _send(
        self, routing_key: str, body: bytes, message_id: str | None, *, user_id: str | None = ""
    ) -> None:
        properties = pika.BasicProperties(
            delivery_mode=PERSISTENT,
            content_type=CONTENT_TYPE,
            message_id=message_id,
            # RabbitMQ refuses a user_id that is not the connection's own, so the engine can
            # trust it to say who published.
            user_id=self.user if user_id == "" else user_id,
        )
        with self._lock:
            if self._closed:
                raise PublishError("the publisher is closed")
            last_error: Exception | None = None
            for attempt in range(1, self._max_attempts + 1):
                try:
                    channel = self._open_channel()
                    # mandatory + confirms: an unroutable message (no queue bound) is an
                    # error, not a silent drop.
                    channel.basic_publish(
                        exchange=EVENTS_EXCHANGE,
                        routing_key=routing_key,
                        body=body,
                        properties=properties,
                        mandatory=True,
                    )
                    return
                except (pika.exceptions.AMQPError, OSError) as exc:
                    last_error = exc
                    self._drop_connection()
                    if _is_permanent(exc):
                        raise PublishError(f"broker refused the message: {exc!r}") from exc
                    if attempt < self._max_attempts:
                        delay = min(self._backoff_s * 2 ** (attempt - 1), self._max_backoff_s)
                        log.warning(
                            "publish under %s failed (attempt %d/%d, retrying in %.2fs): %r",
                            routing_key,
                            attempt,
                            self._max_attempts,
                            delay,
                            exc,
                        )
                        self._sleep(delay)
            raise PublishError(
                f"broker did not confirm the message after {self._max_attempts} attempts: "
                f"{last_error!r}"
            ) from last_error

    def _open_channel(self) -> Any:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        if self._connection is None or not self._connection.is_open:
            self._drop_connection()
            self._connection = self._connection_factory(self._parameters)
        channel = self._connection.channel()
        channel.confirm_delivery()
        self._channel = channel
        return channel

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                log.debug("closing a broken connection failed", exc_info=True)


def _is_permanent(exc: BaseException) -> bool:
    if isinstance(
        exc,
        pika.exceptions.ProbableAuthenticationError
        | pika.exceptions.ProbableAccessDeniedError
        | pika.exceptions.AuthenticationError
        | pika.exceptions.IncompatibleProtocolError,
    ):
        return True
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
        return exc.reply_code in _PERMANENT_REPLY_CODES
    if isinstance(exc, pika.exceptions.ConnectionClosedByBroker):
        # 320 CONNECTION_FORCED (an operator or a broker restart) is worth a retry; a refused
        # vhost or login is not.
        return exc.reply_code in _PERMANENT_CONNECTION_REPLY_CODES
    return False
