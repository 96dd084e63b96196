"""The real servers a fault run uses and breaks: a PostgreSQL database and a RabbitMQ vhost of
its own, and the operator commands that hurt them.

Only the run's own database and vhost are touched, with one exception the brief asks for:
restarting the RabbitMQ application stops the whole local broker for a few seconds. That is
always undone in a `finally`, and the run waits for the broker to answer again.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import pika.exceptions
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

import testbed.scratch

RABBITMQCTL_TIMEOUT_S = 120.0
BROKER_PATIENCE_S = 120.0
ENGINE_APPLICATION_PREFIX = "fault-engine-"
"""Every engine process connects under an application_name with this prefix, so that a fault
can pick the engine's backends and leave the driver's and the oracle's alone."""


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=RABBITMQCTL_TIMEOUT_S,
    )
    return done.stdout


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one run, dropped afterwards."""
    with testbed.scratch.scratch_database(admin_url, "recourse_faults") as url:
        yield url


@contextmanager
def scratch_vhost(host: str) -> Iterator[str]:
    """A fresh RabbitMQ vhost for one run, deleted afterwards (with the broker started again
    first, should a fault have left it stopped)."""
    with testbed.scratch.scratch_vhost(host, "recourse-faults") as url:
        try:
            yield url
        finally:
            ensure_rabbit_running()


def vhost_of(broker_url: str) -> str:
    return unquote(urlsplit(broker_url).path.lstrip("/")) or "/"


def with_application_name(database_url: str, name: str) -> str:
    """The URL with `application_name` set, which PostgreSQL shows in pg_stat_activity."""
    url = make_url(database_url).update_query_dict({"application_name": name})
    return url.render_as_string(hide_password=False)


# RabbitMQ

T = TypeVar("T")


def patiently(step: Callable[[], T]) -> T:
    """Run a step of the harness that talks to RabbitMQ, again while the broker is away.

    The local RabbitMQ is shared: other test sessions restart it too, at any moment.
    """
    deadline = time.monotonic() + BROKER_PATIENCE_S
    while True:
        try:
            return step()
        except (pika.exceptions.AMQPError, subprocess.CalledProcessError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def close_all_connections(vhost: str) -> int:
    """Close every connection of the vhost: the engine's and the driver's. Returns how many."""
    before = connection_count(vhost)
    rabbitmqctl("close_all_connections", "--vhost", vhost, "--limit", "100000", "fault injection")
    return before


def connection_count(vhost: str) -> int:
    listed = json.loads(
        rabbitmqctl("list_connections", "vhost", "--formatter", "json", "--quiet") or "[]"
    )
    return sum(1 for connection in listed if connection.get("vhost") == vhost)


@dataclass(frozen=True, slots=True)
class Restart:
    stopped_s: float
    """How long the broker refused connections, from stop_app to start_app answering."""


def restart_rabbit_app(hold_s: float) -> Restart:
    """`stop_app`, wait `hold_s`, `start_app`, and wait until the node answers again.

    The node is started again whatever happens in between.
    """
    began = time.monotonic()
    try:
        rabbitmqctl("stop_app")
        time.sleep(hold_s)
    finally:
        ensure_rabbit_running()
    return Restart(stopped_s=time.monotonic() - began)


def ensure_rabbit_running() -> None:
    """Start the RabbitMQ application if it is stopped, and wait until it has started."""
    subprocess.run(
        ["rabbitmqctl", "start_app"],
        check=False,
        capture_output=True,
        timeout=RABBITMQCTL_TIMEOUT_S,
    )
    rabbitmqctl("await_startup")


@dataclass(frozen=True, slots=True)
class QueueDepth:
    name: str
    ready: int
    unacked: int

    @property
    def total(self) -> int:
        return self.ready + self.unacked


def queue_depths(vhost: str) -> dict[str, QueueDepth]:
    """Every queue of the vhost with what it holds: ready and delivered but not acked."""
    listed = json.loads(
        rabbitmqctl(
            "list_queues",
            "-p",
            vhost,
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "--formatter",
            "json",
            "--quiet",
        )
        or "[]"
    )
    return {
        row["name"]: QueueDepth(
            row["name"], int(row["messages_ready"]), int(row["messages_unacknowledged"])
        )
        for row in listed
    }


# PostgreSQL


def terminate_engine_backends(engine: Engine) -> int:
    """`pg_terminate_backend` every connection the engine's processes hold on this database
    (never another database's, never the caller's); returns how many were ended."""
    with engine.connect() as conn:
        ended: int = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name LIKE :prefix"
            ),
            {"prefix": f"{ENGINE_APPLICATION_PREFIX}%"},
        ).scalar_one()
        conn.commit()
    return int(ended)


def backends_in_transaction(engine: Engine, application_name: str) -> list[int]:
    """Backends of one engine process that are inside a transaction right now."""
    with engine.connect() as conn:
        pids: list[int] = list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = :name AND xact_start IS NOT NULL"
                    " AND state IN ('active', 'idle in transaction')"
                ),
                {"name": application_name},
            ).scalars()
        )
        return pids


def backend_alive(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        found: int = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar_one()
        return bool(found)
