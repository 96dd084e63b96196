"""The intake's AMQP consumer: reads `refunds.intake` in order and acks after the commit.

The queue has a single active consumer (RabbitMQ's `x-single-active-consumer`): every worker
process runs this consumer, RabbitMQ delivers to one of them and fails over to the next when its
connection goes, handing back unacked messages in their original order. A batch is whatever
arrived by the time the previous one was written, up to `batch_size`: one transaction and one
ack (`multiple`) for all of it. A crash between the commit and the ack delivers the batch again;
the inbox then finds each event a duplicate.

The order holds across a failover only if this consumer never cancels while it holds unacked
messages. A cancel (`basic.cancel`, which pika's `close()` sends before closing a channel) makes
RabbitMQ hand the queue to the next consumer at once, which receives the messages behind ours;
ours go back to the queue only when the channel closes, after those. When the channel or the
connection goes down without a cancel, the queue puts our unacked messages back in their places
and only then chooses the next consumer. So a batch the database refuses for now is tried
again on the same channel, and a stop drops the connection rather than closing it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pika
import pika.exceptions
import structlog

from messages.transport import INTAKE_QUEUE, declare_intake
from workers.intake.service import Delivery, Intake

log = structlog.get_logger(__name__)

BATCH_SIZE = 48
IDLE_WAIT_S = 0.5
RECONNECT_PAUSE_S = 1.0
DROP_WAIT_S = 2.0


class IntakeConsumer:
    def __init__(self, url: str, intake: Intake, *, batch_size: int = BATCH_SIZE) -> None:
        self.parameters = pika.URLParameters(url)
        self.intake = intake
        self.batch_size = batch_size
        self.consuming = threading.Event()
        """Set while this consumer has a channel open on the queue (active or standing by)."""

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._consume(stop)
            except (pika.exceptions.AMQPError, OSError) as exc:
                self.consuming.clear()
                log.warning("intake.connection_lost", error=repr(exc)[:300])
                stop.wait(RECONNECT_PAUSE_S)
            except Exception:
                self.consuming.clear()
                log.exception("intake.failed")
                stop.wait(RECONNECT_PAUSE_S)

    def _consume(self, stop: threading.Event) -> None:
        connection = pika.BlockingConnection(self.parameters)
        try:
            channel = connection.channel()
            declare_intake(channel)
            channel.basic_qos(prefetch_count=self.batch_size * 2)
            pending: list[tuple[int, Delivery]] = []

            def on_message(_channel: object, method: Any, properties: Any, body: bytes) -> None:
                pending.append(
                    (
                        method.delivery_tag,
                        Delivery(
                            body,
                            method.routing_key,
                            properties.user_id,
                        ),
                    )
                )

            channel.basic_consume(INTAKE_QUEUE, on_message)
            self.consuming.set()
            log.info("intake.consuming", queue=INTAKE_QUEUE)
            while not stop.is_set():
                connection.process_data_events(time_limit=0 if pending else IDLE_WAIT_S)
                if not pending:
                    continue
                batch, pending[:] = pending[: self.batch_size], pending[self.batch_size :]
                started = time.perf_counter()
                if not self._store(connection, [delivery for _, delivery in batch], stop):
                    return  # stopped while the database was away: the batch goes back
                channel.basic_ack(delivery_tag=batch[-1][0], multiple=True)
                log.debug(
                    "intake.batch",
                    size=len(batch),
                    ms=round(1000 * (time.perf_counter() - started)),
                )
        finally:
            self.consuming.clear()
            drop(connection)

    def _store(
        self, connection: pika.BlockingConnection, deliveries: list[Delivery], stop: threading.Event
    ) -> bool:
        """Append the batch, trying again on this channel until the database takes it (the
        messages stay ours meanwhile, heartbeats answered); False when stopped first."""
        failures = 0
        while not stop.is_set():
            try:
                self.intake.receive(deliveries)
                if failures:
                    log.info("intake.batch_stored", attempts=failures + 1)
                return True
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.exception("intake.batch_failed")
                else:
                    log.warning("intake.batch_failed", attempts=failures, error=repr(exc)[:300])
                connection.sleep(RECONNECT_PAUSE_S)
        return False


def drop(connection: pika.BlockingConnection) -> None:
    """Bring the connection down without a `basic.cancel` (see the module's docstring): the
    broker then requeues our unacked messages in their places before it hands the queue on.

    pika has no public call for this: `close()` cancels the consumers first. Aborting the
    transport is what a lost network does, which the broker already handles this way."""
    if connection.is_closed:
        return
    try:
        connection._impl._adapter_disconnect_stream()  # private: see the docstring
        deadline = time.monotonic() + DROP_WAIT_S
        while not connection.is_closed and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
    except Exception:  # pika reports the abort in several ways; down is down
        log.debug("intake.dropped", exc_info=True)
