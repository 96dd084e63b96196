"""`recourse health`: can this deployment reach its database and its broker?"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pika
import pika.exceptions
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from messages.transport import EVENTS_QUEUE, TICKS_QUEUE, dead_letter_queue
from policy.tables import inbox


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database(engine: Engine) -> Check:
    """Connects and reads the inbox, which also proves the schema is migrated."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.execute(select(inbox.c.event_id).limit(1)).all()
    except SQLAlchemyError as exc:
        first_line = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return Check("database", False, f"{where}: {first_line[0] if first_line else exc!r}")
    return Check("database", True, where)


ConnectionFactory = Callable[[pika.connection.Parameters], pika.BlockingConnection]


def check_broker(
    url: str | None, *, connection_factory: ConnectionFactory = pika.BlockingConnection
) -> Check:
    """Connects, and reports the depth of the work and dead-letter queues.

    A queue that does not exist yet is not a failure: the workers declare it when they start.
    """
    if not url:
        return Check("broker", True, "embedded StubBroker (in process)")
    parameters = pika.URLParameters(url)
    where = f"amqp://{parameters.host}:{parameters.port}/{parameters.virtual_host}"
    try:
        connection = connection_factory(parameters)
    except (pika.exceptions.AMQPError, OSError) as exc:
        return Check("broker", False, f"{where}: {exc!r}")
    depths: list[str] = []
    try:
        for queue in (
            EVENTS_QUEUE,
            TICKS_QUEUE,
            dead_letter_queue(EVENTS_QUEUE),
            dead_letter_queue(TICKS_QUEUE),
        ):
            channel = connection.channel()
            try:
                count = channel.queue_declare(queue=queue, passive=True).method.message_count
                depths.append(f"{queue}={count}")
                channel.close()
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                depths.append(f"{queue}=not declared yet")
    except (pika.exceptions.AMQPError, OSError) as exc:
        return Check("broker", False, f"{where}: {exc!r}")
    finally:
        if connection.is_open:
            connection.close()
    return Check("broker", True, f"{where} ({', '.join(depths)})")


def check_all(engine: Engine, broker_url: str | None) -> list[Check]:
    return [check_database(engine), check_broker(broker_url)]
