"""The servers a benchmark runs against: a throwaway database and vhost of its own on this
machine's PostgreSQL and RabbitMQ. Set RECOURSE_BENCH_PG (an admin URL) and
RECOURSE_BENCH_RABBIT_HOST to point elsewhere."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from testbed.scratch import RABBITMQCTL_TIMEOUT_S, scratch_database, scratch_vhost

PG_ADMIN_URL = os.environ.get(
    "RECOURSE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RABBIT_HOST = os.environ.get("RECOURSE_BENCH_RABBIT_HOST", "127.0.0.1")


@contextmanager
def pg_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """The URL of a new, empty database, dropped on the way out."""
    with scratch_database(admin_url, "recourse_bench") as url:
        yield url


@contextmanager
def rabbit_vhost() -> Iterator[str]:
    """The amqp URL of a new vhost (guest may use it), deleted on the way out."""
    with scratch_vhost(RABBIT_HOST, "recourse-bench") as url:
        yield url


def server_versions(admin_url: str = PG_ADMIN_URL) -> dict[str, str]:
    """What the figures were measured against."""
    admin = create_engine(admin_url)
    try:
        with admin.connect() as conn:
            postgres = str(conn.execute(text("SHOW server_version")).scalar_one())
    finally:
        admin.dispose()
    try:
        status = subprocess.run(
            ["rabbitmqctl", "version"],
            capture_output=True,
            text=True,
            timeout=RABBITMQCTL_TIMEOUT_S,
            check=True,
        )
        rabbitmq = status.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rabbitmq = "unknown"
    return {"postgresql": postgres, "rabbitmq": rabbitmq}
