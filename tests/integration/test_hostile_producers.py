"""A careless or hostile producer against a running worker, with nothing but write access to
the exchange (issue 21's table, on today's transport): every message below is dead-lettered
with the engine's own reason naming the field, or refused as `unauthorized_producer` or
`misrouted`; nothing touches the ledger; no thread dies; a valid event sent right after each
one is applied within a second; no log line carries the free text sent."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import structlog
from ordered_driver import wait_until
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from ledger.tables import transfers
from messages.publisher import EventPublisher
from policy.tables import inbox
from workers.cli import app
from workers.intake.tables import dead_letters
from workers.runtime import Runtime, WorkerHandle
from workers.settings import Settings

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SECRET = "card 4111 1111 1111 1111 exp 12/29"
"""Free text a careless producer sends: it must never reach a log line."""


def envelope(event_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": "refund.requested",
        "occurred_at": "2026-03-02T10:00:00Z",
        "schema_version": 1,
        "data": {
            "request_id": f"r-{event_id}",
            "contract_id": "c-hostile",
            "target_id": "m-hostile",
            "amount_minor": 1_000,
            "reason": SECRET,
        },
    }
    data = changes.pop("data", {})
    body.update(changes)
    body["data"] = {**body["data"], **data}
    return body


def dramatiq_shaped(event_id: str, options: dict[str, Any], **fields: Any) -> bytes:
    """What producers used to send: Dramatiq's message around the envelope, with options."""
    return json.dumps(
        {
            "queue_name": fields.get("queue_name", "refunds.events"),
            "actor_name": "handle_event",
            "args": [envelope(event_id)],
            "kwargs": {},
            "options": options,
            "message_id": str(uuid.uuid4()),
            "message_timestamp": 1_772_445_600_000,
        }
    ).encode()


@dataclass(frozen=True)
class Hostile:
    name: str
    body: bytes
    routing_key: str
    reason: str
    field: str | None = None
    """The field the dead letter must name, when the reason is `malformed`."""


def deep(levels: int) -> bytes:
    return b'{"event_id":"deep","data":' + b"[" * levels + b"]" * levels + b"}"


HOSTILE = [
    Hostile(
        "eta-3000",
        dramatiq_shaped("h-eta", {"eta": 32503680000000}),
        "c-hostile",
        "malformed",
        "type",
    ),
    Hostile(
        "throws-string",
        dramatiq_shaped("h-throws", {"throws": "x"}),
        "c-hostile",
        "malformed",
        "type",
    ),
    Hostile(
        "queue-name",
        dramatiq_shaped("h-queue", {}, queue_name="refunds.ticks"),
        "c-hostile",
        "malformed",
        "type",
    ),
    Hostile(
        "retries-negative",
        dramatiq_shaped("h-retries", {"retries": -1}),
        "c-hostile",
        "malformed",
        "type",
    ),
    Hostile(
        "first-failed-at",
        dramatiq_shaped("h-first", {"first_failed_at": 0}),
        "c-hostile",
        "malformed",
        "type",
    ),
    Hostile(
        "forged-reason",
        dramatiq_shaped("h-reason", {"dead_letter_reason": "ok"}),
        "c-hostile",
        "malformed",
        "type",
    ),
    Hostile(
        "repeated-key",
        json.dumps(envelope("h-repeat"))
        .replace('"amount_minor": 1000', '"amount_minor": 1, "amount_minor": 1000000')
        .encode(),
        "c-hostile",
        "malformed",
        "body",
    ),
    Hostile(
        "tick-2099",
        json.dumps(
            {
                "event_id": "h-tick",
                "type": "deadline.tick",
                "occurred_at": "2099-01-01T00:00:00Z",
                "schema_version": 1,
                "data": {},
            }
        ).encode(),
        "deadline.tick",
        "unauthorized_producer",
    ),
    Hostile(
        "dispute-resolved",
        json.dumps(
            {
                "event_id": "h-resolved",
                "type": "dispute.resolved",
                "occurred_at": "2026-03-02T10:00:00Z",
                "schema_version": 1,
                "data": {"dispute_id": "d1", "contract_id": "c-hostile", "outcome": "full_refund"},
            }
        ).encode(),
        "c-hostile",
        "unauthorized_producer",
    ),
    Hostile(
        "amount-2-62",
        json.dumps(envelope("h-big", data={"amount_minor": 2**62})).encode(),
        "c-hostile",
        "malformed",
        "data.amount_minor",
    ),
    Hostile(
        "nul-in-id",
        json.dumps(envelope("h-nul\u0000")).encode(),
        "c-hostile",
        "malformed",
        "event_id",
    ),
    Hostile(
        "control-in-id",
        json.dumps(envelope("h-ctl\u0007")).encode(),
        "c-hostile",
        "malformed",
        "event_id",
    ),
    Hostile(
        "cyrillic-in-id",
        json.dumps(envelope("h-\u0441yr")).encode(),
        "c-hostile",
        "malformed",
        "event_id",
    ),
    Hostile(
        "zero-width-in-id",
        json.dumps(envelope("h-zw\u200b")).encode(),
        "c-hostile",
        "malformed",
        "event_id",
    ),
    Hostile(
        "year-0001",
        json.dumps(envelope("h-year", occurred_at="0001-01-01T00:00:00Z")).encode(),
        "c-hostile",
        "malformed",
        "occurred_at",
    ),
    Hostile(
        "no-seconds",
        json.dumps(envelope("h-secs", occurred_at="2026-03-02T10:00Z")).encode(),
        "c-hostile",
        "malformed",
        "occurred_at",
    ),
    Hostile("deep-100000", deep(100_000), "c-hostile", "malformed", "body"),
    Hostile(
        "body-300k",
        json.dumps(envelope("h-huge", data={"reason": "x" * 300_000})).encode(),
        "c-hostile",
        "malformed",
        "body",
    ),
    Hostile("misrouted", json.dumps(envelope("h-misrouted")).encode(), "c-other", "misrouted"),
    Hostile("not-json", b"\xff\xfe not json " + SECRET.encode(), "c-hostile", "malformed", "body"),
]


@pytest.fixture
def hostile_url(rabbit_url: str) -> Iterator[str]:
    """A broker user that may only write to the exchange, as a producer would be set up."""
    vhost = urlsplit(rabbit_url).path.lstrip("/")
    user, password = f"hostile-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    run = ["rabbitmqctl"]
    subprocess.run([*run, "add_user", user, password], check=True, capture_output=True)
    subprocess.run(
        [*run, "set_permissions", "-p", vhost, user, "^$", "^refunds\\.events$", "^$"],
        check=True,
        capture_output=True,
    )
    parts = urlsplit(rabbit_url)
    yield urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:5672"))
    subprocess.run([*run, "delete_user", user], check=False, capture_output=True)


@pytest.fixture
def worker(
    pg_url: str, pg_engine: Engine, rabbit_url: str, hostile_url: str, tmp_path: Path
) -> Iterator[tuple[Runtime, WorkerHandle]]:
    table = tmp_path / "producers.toml"
    user = urlsplit(hostile_url).username
    table.write_text(f'[producers.{user}]\ntypes = ["contract.*", "milestone.*", "refund.*"]\n')
    runtime = Runtime.build(
        Settings(database_url=pg_url, broker_url=rabbit_url, producers_file=table)
    )
    handle = runtime.start_worker(4, timeout_ms=100)
    assert handle.consumer is not None
    wait_until(handle.consumer.consuming.is_set, "the intake to consume")
    yield runtime, handle
    handle.stop()
    runtime.close()


def contract_opened(n: int) -> dict[str, Any]:
    return {
        "event_id": f"valid-{n}",
        "type": "contract.opened",
        "occurred_at": "2026-03-02T09:00:00Z",
        "schema_version": 1,
        "data": {
            "contract_id": f"c-valid-{n}",
            "kind": "fixed",
            "client_id": "ana",
            "creator_id": "ben",
            "currency": "USD",
            "policy": "spectrum",
        },
    }


def test_hostile_messages_are_dead_lettered_by_the_engine_and_valid_ones_still_flow(
    worker: tuple[Runtime, WorkerHandle], hostile_url: str, pg_url: str
) -> None:
    runtime, handle = worker
    engine = runtime.engine
    latencies: list[float] = []
    with structlog.testing.capture_logs() as logged, EventPublisher(hostile_url) as publisher:
        for n, hostile in enumerate(HOSTILE):
            publisher.publish_raw(hostile.body, routing_key=hostile.routing_key)
            sent = time.monotonic()
            publisher.publish(contract_opened(n))
            wait_until(lambda n=n: _applied(engine, f"valid-{n}"), f"valid-{n}", timeout_s=10)
            latencies.append(time.monotonic() - sent)
        wait_until(lambda: _letters(engine) >= len(HOSTILE), "every dead letter")

    with engine.connect() as conn:
        rows = conn.execute(
            select(
                dead_letters.c.dead_letter_id, dead_letters.c.reason, dead_letters.c.problems
            ).order_by(dead_letters.c.dead_letter_id)
        ).all()
        assert conn.execute(select(func.count()).select_from(transfers)).scalar_one() == 0
        applied = set(conn.execute(select(inbox.c.event_id)).scalars())
    assert applied == {f"valid-{n}" for n in range(len(HOSTILE))}
    assert len(rows) == len(HOSTILE)
    for hostile, (_id, reason, problems) in zip(HOSTILE, rows, strict=True):
        assert reason == hostile.reason, hostile.name
        if hostile.field is not None:
            fields = [field for field, _ in json.loads(problems)]
            assert hostile.field in fields, (hostile.name, fields)
    assert max(latencies) < 1.0, latencies
    assert handle.dead_threads() == []
    assert not [line for line in logged if SECRET in json.dumps(line, default=str)]
    # The dead-letter tools read every one of them, the deepest and the largest included.
    runner = CliRunner()
    listed = runner.invoke(app, ["dlq", "list", "--db", pg_url, "--json", "--limit", "100"])
    assert listed.exit_code == 0, listed.output
    ids = [item["dead_letter_id"] for item in json.loads(listed.output)["dead_letters"]]
    assert sorted(ids) == sorted(row[0] for row in rows)
    for dead_letter_id in ids:
        shown = runner.invoke(app, ["dlq", "show", str(dead_letter_id), "--db", pg_url])
        assert shown.exit_code == 0, shown.output


def _applied(engine: Engine, event_id: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(select(inbox.c.result).where(inbox.c.event_id == event_id)).first()
    return found is not None


def _letters(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(dead_letters)).scalar_one())
