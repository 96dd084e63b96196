"""Who may publish what (MESSAGES.md, "Who may publish what"), with three real broker users:
each may publish its types and no other; ticks are the engine's own."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from ordered_driver import live_outcome, wait_settled, wait_until
from sqlalchemy import Engine, select

from messages.errors import PublishError
from messages.publisher import EventPublisher
from policy.tables import inbox
from workers.runtime import Runtime, WorkerHandle
from workers.settings import Settings

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

PRODUCERS_TOML = """\
[producers.{contracts}]
types = ["contract.*", "milestone.*", "work.started", "hourly.invoice_paid",
         "refund.requested", "dispute.opened"]

[producers.{payments}]
types = ["chargeback.*", "processor.fee_refunded"]

[producers.{disputes}]
types = ["dispute.resolved", "refund.approved", "refund.declined", "refund.escalated"]
"""


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def producers(rabbit_url: str) -> Iterator[dict[str, str]]:
    """Three broker users on the test's vhost, each with write access only: name -> URL."""
    vhost = urlsplit(rabbit_url).path.lstrip("/")
    suffix = uuid.uuid4().hex[:8]
    made: dict[str, str] = {}
    for role in ("contracts", "payments", "disputes"):
        user, password = f"{role}-{suffix}", uuid.uuid4().hex
        rabbitmqctl("add_user", user, password)
        rabbitmqctl("set_permissions", "-p", vhost, user, "^$", "^refunds\\.events$", "^$")
        parts = urlsplit(rabbit_url)
        made[role] = urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:5672"))
    yield made
    for url in made.values():
        rabbitmqctl("delete_user", urlsplit(url).username or "")


@pytest.fixture
def worker(
    pg_url: str, pg_engine: Engine, rabbit_url: str, producers: dict[str, str], tmp_path: Path
) -> Iterator[Runtime]:
    users = {role: urlsplit(url).username for role, url in producers.items()}
    table = tmp_path / "producers.toml"
    table.write_text(PRODUCERS_TOML.format(**users))
    runtime = Runtime.build(
        Settings(database_url=pg_url, broker_url=rabbit_url, producers_file=table)
    )
    handle: WorkerHandle = runtime.start_worker(2, timeout_ms=100)
    assert handle.consumer is not None
    wait_until(handle.consumer.consuming.is_set, "the intake to consume")
    yield runtime
    handle.stop()
    runtime.close()


def event(event_id: str, type_: str, at: str, **data: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": type_,
        "occurred_at": at,
        "schema_version": 1,
        "data": data,
    }


OPENED = event(
    "open",
    "contract.opened",
    "2026-03-02T09:00:00Z",
    contract_id="c1",
    kind="fixed",
    client_id="ana",
    creator_id="ben",
    currency="USD",
    policy="spectrum",
)
FUNDED = event(
    "fund",
    "milestone.funded",
    "2026-03-02T10:00:00Z",
    contract_id="c1",
    milestone_id="m1",
    payment_id="p1",
    amount_minor=50_000,
    processor_fee_minor=1_480,
)
CHARGEBACK = event(
    "cb",
    "chargeback.opened",
    "2026-03-03T10:00:00Z",
    chargeback_id="cb1",
    payment_id="p1",
    amount_minor=50_000,
    issuer_fee_minor=1_500,
)
RELEASE = event(
    "release",
    "milestone.released",
    "2026-03-04T10:00:00Z",
    contract_id="c1",
    milestone_id="m1",
    released_by="client",
)
TICK = event("tick", "deadline.tick", "2026-04-01T00:00:00Z")


def send(url: str, *envelopes: dict[str, Any]) -> None:
    with EventPublisher(url) as publisher:
        for envelope in envelopes:
            publisher.publish(envelope)


def results(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(inbox.c.event_id, inbox.c.result)).all())


def test_each_producer_publishes_its_types_and_no_other(
    worker: Runtime, producers: dict[str, str], rabbit_url: str
) -> None:
    send(producers["contracts"], OPENED, FUNDED)
    send(producers["payments"], CHARGEBACK, {**RELEASE, "event_id": "release-by-payments"})
    send(producers["disputes"], {**FUNDED, "event_id": "fund-by-disputes"})
    send(producers["contracts"], {**TICK, "event_id": "tick-by-contracts"})
    send(rabbit_url, TICK)

    wait_settled(worker.engine, 7)

    assert results(worker.engine) == {
        "open": "applied",
        "fund": "applied",
        "cb": "applied",
        "tick": "applied",
    }
    assert live_outcome(worker.engine).dead_letters == {
        "release-by-payments": "unauthorized_producer",
        "fund-by-disputes": "unauthorized_producer",
        "tick-by-contracts": "unauthorized_producer",
    }


def test_a_producer_cannot_claim_another_users_identity(
    worker: Runtime, producers: dict[str, str]
) -> None:
    """RabbitMQ itself refuses a `user_id` that is not the connection's user."""
    with (
        EventPublisher(producers["payments"], max_attempts=1) as publisher,
        pytest.raises(PublishError),
    ):
        publisher.publish_raw(
            json.dumps(OPENED).encode(),
            routing_key="c1",
            user_id=urlsplit(producers["contracts"]).username,
        )


def test_a_producer_can_neither_read_nor_declare(
    producers: dict[str, str], worker: Runtime
) -> None:
    import pika
    import pika.exceptions

    connection = pika.BlockingConnection(pika.URLParameters(producers["contracts"]))
    try:
        channel = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_get("refunds.intake")
        assert refused.value.reply_code == 403
    finally:
        if connection.is_open:
            connection.close()
