"""`recourse health`: is the database usable, is the intake keeping up, and is a worker
consuming `refunds.intake`?

- database: connects and reads the inbox and the event log (so the schema is migrated);
- intake: the oldest pending entry of the event log whose key is not parked must be younger
  than `max_pending_seconds` (an older one means no drain is applying it); parked keys and dead
  letters are counted and shown, not failed on: they wait for time or for an operator;
- broker (with BROKER_URL): connects;
- worker (with BROKER_URL): a passive `queue_declare` of `refunds.intake` returns its consumer
  count, with no management plugin needed; no consumer means nothing takes messages in.

In the embedded mode (no BROKER_URL) the intake runs inside the process that takes the
envelopes, so the last two have nothing to check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions
from sqlalchemy import Engine, exists, func, select
from sqlalchemy.exc import SQLAlchemyError

from messages.transport import INTAKE_QUEUE
from policy.tables import inbox
from workers.intake.tables import dead_letters, event_log, parked_keys
from workers.operator.errors import first_line

DEFAULT_MAX_PENDING_SECONDS = 120.0
NOT_FOUND = 404

ConnectionFactory = Callable[[pika.connection.Parameters], pika.BlockingConnection]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)
    """Figures a script may want (`health --json`)."""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, **self.facts}


def check_database(engine: Engine) -> Check:
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.execute(select(inbox.c.event_id).limit(1)).all()
            conn.execute(select(event_log.c.seq).limit(1)).all()
    except SQLAlchemyError as exc:
        return Check("database", False, f"{where}: {first_line(exc)}")
    return Check("database", True, where)


def check_intake(
    engine: Engine,
    *,
    max_pending_seconds: float = DEFAULT_MAX_PENDING_SECONDS,
    now: datetime | None = None,
) -> Check:
    now = now or datetime.now(UTC)
    pending = event_log.c.status == "pending"
    not_parked = ~exists().where(parked_keys.c.ordering_key == event_log.c.ordering_key)
    try:
        with engine.connect() as conn:
            pending_count: int = conn.execute(
                select(func.count()).select_from(event_log).where(pending)
            ).scalar_one()
            oldest: datetime | None = conn.execute(
                select(func.min(event_log.c.received_at)).where(pending, not_parked)
            ).scalar()
            parked: int = conn.execute(select(func.count()).select_from(parked_keys)).scalar_one()
            dead: int = conn.execute(select(func.count()).select_from(dead_letters)).scalar_one()
    except SQLAlchemyError as exc:
        return Check("intake", False, f"cannot read the event log: {first_line(exc)}")
    age_s = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    facts = {
        "pending": pending_count,
        "oldest_pending_seconds": None if age_s is None else round(age_s, 1),
        "max_pending_seconds": max_pending_seconds,
        "parked_keys": parked,
        "dead_letters": dead,
    }
    counts = f"{pending_count} pending, {parked} parked keys, {dead} dead letters"
    if age_s is None:
        return Check("intake", True, f"nothing waits to be applied ({counts})", facts)
    ok = age_s <= max_pending_seconds
    verdict = "" if ok else f", older than {max_pending_seconds:g}s: no worker is applying it"
    detail = f"oldest pending entry received {age_s:.0f}s ago{verdict} ({counts})"
    return Check("intake", ok, detail, facts)


def check_broker(
    url: str | None, *, connection_factory: ConnectionFactory = pika.BlockingConnection
) -> list[Check]:
    """The broker check and the worker check, on one connection."""
    if not url:
        return [
            Check("broker", True, "none: embedded mode (BROKER_URL is not set)"),
            Check("worker", True, "embedded mode: the intake runs in the process that submits"),
        ]
    parameters = pika.URLParameters(url)
    where = f"amqp://{parameters.host}:{parameters.port}/{parameters.virtual_host}"
    try:
        connection = connection_factory(parameters)
    except (pika.exceptions.AMQPError, OSError) as exc:
        return [
            Check("broker", False, f"{where}: {exc!r}"),
            Check("worker", False, "the broker cannot be reached"),
        ]
    try:
        return [Check("broker", True, where), _check_consumers(connection)]
    except (pika.exceptions.AMQPError, OSError) as exc:
        return [
            Check("broker", False, f"{where}: {exc!r}"),
            Check("worker", False, "the broker failed while asked"),
        ]
    finally:
        if connection.is_open:
            connection.close()


def _check_consumers(connection: Any) -> Check:
    channel = connection.channel()
    try:
        # Passive: only asks; declaring it here could create it with other arguments.
        declared = channel.queue_declare(queue=INTAKE_QUEUE, passive=True).method
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != NOT_FOUND:
            raise
        return Check(
            "worker",
            False,
            f"{INTAKE_QUEUE} is not declared: no worker has started on this vhost",
            {"consumers": 0, "messages": None},
        )
    consumers: int = declared.consumer_count
    messages: int = declared.message_count
    if channel.is_open:
        channel.close()
    facts = {"consumers": consumers, "messages": messages}
    if consumers == 0:
        return Check(
            "worker", False, f"no worker consuming {INTAKE_QUEUE} ({messages} waiting)", facts
        )
    return Check(
        "worker", True, f"{consumers} consuming {INTAKE_QUEUE} ({messages} waiting)", facts
    )


def check_all(
    engine: Engine,
    broker_url: str | None,
    *,
    max_pending_seconds: float = DEFAULT_MAX_PENDING_SECONDS,
    connection_factory: ConnectionFactory = pika.BlockingConnection,
) -> list[Check]:
    database = check_database(engine)
    if database.ok:
        intake = check_intake(engine, max_pending_seconds=max_pending_seconds)
    else:
        intake = Check("intake", False, "the database is not usable")
    return [database, intake, *check_broker(broker_url, connection_factory=connection_factory)]


def check_url(
    database_url: str, broker_url: str | None, *, max_pending_seconds: float
) -> list[Check]:
    """`recourse health` on the database at `database_url`: like `check_all`, but a SQLite file
    that does not exist is a failed check, not a new empty file that connecting would create."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from workers.database import make_engine

    parsed = make_url(database_url)
    path = parsed.database
    in_a_file = parsed.get_backend_name() == "sqlite" and path and path != ":memory:"
    if in_a_file and not Path(str(path)).is_file():
        where = parsed.render_as_string(hide_password=True)
        return [
            Check("database", False, f"{where}: the SQLite file does not exist"),
            Check("intake", False, "the database is not usable"),
            *check_broker(broker_url),
        ]
    engine = make_engine(database_url)
    try:
        return check_all(engine, broker_url, max_pending_seconds=max_pending_seconds)
    finally:
        engine.dispose()
