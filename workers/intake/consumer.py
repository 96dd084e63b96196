"""The intake's AMQP consumer: reads `refunds.intake` in order and acks after the commit.

The queue has a single active consumer (RabbitMQ's `x-single-active-consumer`): every worker
process runs this consumer, RabbitMQ delivers to one of them and fails over to the next when its
connection goes, handing back unacked messages in their original order. A batch is whatever
arrived by the time the previous one was written, up to `batch_size`: one transaction and one
ack (`multiple`) for all of it. A crash between the commit and the ack delivers the batch again;
the inbox then finds each event a duplicate.
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

BATCH_SIZE = 256
IDLE_WAIT_S = 0.5
RECONNECT_PAUSE_S = 1.0


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
                # The database refused the batch: the connection closed with it unacked, and
                # RabbitMQ delivers it again, in order, once we are back.
                self.consuming.clear()
                log.exception("intake.batch_failed")
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
                self.intake.receive([delivery for _, delivery in batch])
                channel.basic_ack(delivery_tag=batch[-1][0], multiple=True)
                log.debug(
                    "intake.batch",
                    size=len(batch),
                    ms=round(1000 * (time.perf_counter() - started)),
                )
        finally:
            self.consuming.clear()
            if connection.is_open:
                try:
                    connection.close()
                except (pika.exceptions.AMQPError, OSError):
                    log.debug("intake.close_failed", exc_info=True)
