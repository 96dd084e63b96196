"""The broker users of deploy/rabbitmq/setup-users.sh, with exactly its permissions, on a real
RabbitMQ: the engine (intake, drains, relay, ticks, health) works as its user, and a producer
can publish and do nothing else."""

from __future__ import annotations

import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions
import pytest
from ordered_driver import wait_settled, wait_until
from sqlalchemy import Engine

from messages.publisher import EventPublisher
from workers.health import check_broker
from workers.relay import OutboxNotification, RabbitNotificationSink
from workers.runtime import Runtime
from workers.settings import Settings

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

SETUP_USERS = Path(__file__).parents[2] / "deploy" / "rabbitmq" / "setup-users.sh"


def permissions() -> dict[str, tuple[str, str, str]]:
    """user -> (configure, write, read), read from the script's `user` lines."""
    found = {}
    for line in SETUP_USERS.read_text("utf-8").splitlines():
        if re.match(r"^user \S+ ", line):
            name, _password, configure, write, read = shlex.split(line)[1:]
            found[name] = (configure, write, read)
    return found


@pytest.fixture
def users(rabbit_url: str) -> Iterator[dict[str, str]]:
    vhost = urlsplit(rabbit_url).path.lstrip("/")
    suffix = uuid.uuid4().hex[:6]
    parts = urlsplit(rabbit_url)
    urls = {}
    for name, (configure, write, read) in permissions().items():
        user, password = f"{name}-{suffix}", uuid.uuid4().hex
        subprocess.run(["rabbitmqctl", "add_user", user, password], check=True, capture_output=True)
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", vhost, user, configure, write, read],
            check=True,
            capture_output=True,
        )
        urls[name] = urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:5672"))
    yield urls
    for url in urls.values():
        subprocess.run(
            ["rabbitmqctl", "delete_user", urlsplit(url).username or ""],
            check=False,
            capture_output=True,
        )


def test_the_engine_runs_as_its_own_user_and_a_producer_may_only_publish(
    users: dict[str, str], pg_url: str, pg_engine: Engine
) -> None:
    assert set(users) == {
        "recourse-engine",
        "contracts-service",
        "payments-service",
        "dispute-tools",
    }
    engine_url = users["recourse-engine"]
    runtime = Runtime.build(Settings(database_url=pg_url, broker_url=engine_url))
    handle = runtime.start_worker(2, timeout_ms=100)
    try:
        assert handle.consumer is not None
        wait_until(handle.consumer.consuming.is_set, "the intake to consume as the engine user")
        opened = {
            "event_id": "e1",
            "type": "contract.opened",
            "occurred_at": "2026-03-02T09:00:00Z",
            "schema_version": 1,
            "data": {
                "contract_id": "c1",
                "kind": "fixed",
                "client_id": "ana",
                "creator_id": "ben",
                "currency": "USD",
                "policy": "spectrum",
            },
        }
        with EventPublisher(users["contracts-service"]) as producer:
            producer.publish(opened)
        with EventPublisher(engine_url) as scheduler:
            scheduler.publish(
                {
                    "event_id": "t1",
                    "type": "deadline.tick",
                    "occurred_at": "2026-03-03T00:00:00Z",
                    "schema_version": 1,
                    "data": {},
                }
            )
        wait_settled(runtime.engine, 2)
        assert all(check.ok for check in check_broker(engine_url))
        sink = RabbitNotificationSink(engine_url)
        try:
            sink.publish(
                OutboxNotification(seq=1, notification_id="n1", type="dispute.opened", body="{}")
            )
        finally:
            sink.close()
    finally:
        handle.stop()
        runtime.close()

    connection = pika.BlockingConnection(pika.URLParameters(users["contracts-service"]))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            connection.channel().queue_declare("anything")
        assert refused.value.reply_code == 403
    finally:
        if connection.is_open:
            connection.close()
