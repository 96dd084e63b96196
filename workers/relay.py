"""The outbox relay: publish the notifications that committed transactions wrote to the outbox.

Each batch is one transaction: claim up to `batch_size` unsent rows oldest first (on
PostgreSQL `FOR UPDATE SKIP LOCKED`, so several relays share the work without sending a row
twice), publish each with a publisher confirm, then mark them sent and commit. A crash or a
broker error between publish and commit rolls the marks back, and the rows are sent again by
the next claim: a notification may be delivered twice (consumers dedupe on `notification_id`,
the AMQP `message_id`) but never lost. One relay publishes in outbox order; with several, each
batch is in order but batches interleave.

RabbitMQ: the topic exchange `refunds.notifications` (durable, declared here), routing key the
notification type, persistent messages. Embedded mode: `MemorySink`, a list and a callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

import pika
import pika.exceptions
import structlog
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import DBAPIError

from messages.transport import NOTIFICATIONS_EXCHANGE
from policy.tables import outbox
from scheduler.clock import Clock, SystemClock
from workers.errors import NotificationPublishError
from workers.metrics import EngineMetrics

log = structlog.get_logger(__name__)

PERSISTENT = 2
MAX_IDLE_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class OutboxNotification:
    seq: int
    notification_id: str
    type: str
    body: str


class NotificationSink(Protocol):
    def publish(self, notification: OutboxNotification) -> None:
        """Deliver one notification; return only once it is safely handed over."""


@dataclass
class MemorySink:
    """The embedded sink: keeps what it is given (unless `keep` is off, for a long run), and
    tells `callback` when there is one."""

    callback: Callable[[OutboxNotification], None] | None = None
    keep: bool = True
    sent: list[OutboxNotification] = field(default_factory=list)

    def publish(self, notification: OutboxNotification) -> None:
        if self.keep:
            self.sent.append(notification)
        if self.callback is not None:
            self.callback(notification)


ConnectionFactory = Callable[[pika.connection.Parameters], pika.BlockingConnection]


class RabbitNotificationSink:
    """Publishes to the topic exchange with confirms; one connection, for one thread."""

    def __init__(
        self, url: str, *, connection_factory: ConnectionFactory = pika.BlockingConnection
    ) -> None:
        self._parameters = pika.URLParameters(url)
        self._connection_factory = connection_factory
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def publish(self, notification: OutboxNotification) -> None:
        try:
            channel = self._open_channel()
            # Not mandatory: a type nobody has bound a queue to yet is not an error of ours.
            channel.basic_publish(
                exchange=NOTIFICATIONS_EXCHANGE,
                routing_key=notification.type,
                body=notification.body.encode("utf-8"),
                properties=pika.BasicProperties(
                    delivery_mode=PERSISTENT,
                    content_type="application/json",
                    content_encoding="utf-8",
                    message_id=notification.notification_id,
                    type=notification.type,
                ),
            )
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise NotificationPublishError(
                f"{notification.notification_id} was not confirmed: {exc!r}"
            ) from exc

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except (pika.exceptions.AMQPError, OSError):
                log.debug("relay.close_failed", exc_info=True)

    def _open_channel(self) -> Any:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        if self._connection is None or not self._connection.is_open:
            self._connection = self._connection_factory(self._parameters)
        channel = self._connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare(
            exchange=NOTIFICATIONS_EXCHANGE, exchange_type="topic", durable=True
        )
        self._channel = channel
        return channel


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        sink: NotificationSink,
        *,
        batch_size: int = 200,
        clock: Clock | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.sink = sink
        self.batch_size = batch_size
        self._clock = clock or SystemClock()
        self._metrics = metrics

    def relay_batch(self) -> int:
        """Publish one batch and mark it sent; returns how many rows it sent."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # The transaction sits idle while the broker confirms each publish, which can
                # take long (a memory alarm blocks publishers): ending the session then would
                # lose the marks and publish the batch again and again. It holds only outbox
                # rows, taken with SKIP LOCKED, so it may wait.
                conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
            rows = [
                OutboxNotification(row.seq, row.notification_id, row.type, row.body)
                for row in conn.execute(
                    select(outbox.c.seq, outbox.c.notification_id, outbox.c.type, outbox.c.body)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ]
            for notification in rows:
                self.sink.publish(notification)
            if rows:
                # `sent_at` is bookkeeping of the relay, not a rule's time: the wall clock.
                sent_at: datetime = self._clock.now()
                conn.execute(
                    update(outbox)
                    .where(outbox.c.seq.in_([row.seq for row in rows]))
                    .values(sent_at=sent_at)
                )
        if rows:
            # One line per batch, so that the log shows the relay at work between start and stop.
            log.info(
                "relay.published", count=len(rows), first_seq=rows[0].seq, last_seq=rows[-1].seq
            )
        if self._metrics is not None:
            for notification in rows:
                self._metrics.record_notification(notification.type, notification.body)
        return len(rows)

    def drain(self) -> int:
        """Relay batches until the outbox has nothing unsent; returns how many were sent."""
        total = 0
        while sent := self.relay_batch():
            total += sent
        return total

    def run(self, stop: threading.Event, *, idle_seconds: float = 0.5) -> None:
        """Relay until `stop` is set; wait `idle_seconds` when the outbox is empty, and back
        off (doubling, capped) while the database or the broker is away."""
        pause = idle_seconds
        log.info("relay.started", batch_size=self.batch_size)
        while not stop.is_set():
            try:
                sent = self.relay_batch()
            except Exception as exc:
                # A relay that dies quietly lets the outbox grow unseen: log, back off, go on.
                if isinstance(exc, NotificationPublishError | DBAPIError):
                    log.warning("relay.failed", error=str(exc), retry_in_s=pause)
                else:
                    log.exception("relay.crashed", retry_in_s=pause)
                stop.wait(pause)
                pause = min(pause * 2, MAX_IDLE_BACKOFF_S)
                continue
            pause = idle_seconds
            if sent < self.batch_size:
                stop.wait(idle_seconds)
        log.info("relay.stopped")
