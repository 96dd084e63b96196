"""Throwaway PostgreSQL databases and RabbitMQ vhosts, so a run never touches real data and
leaves nothing behind. Set RECOURSE_BENCH_PG (an admin URL) and RECOURSE_BENCH_RABBIT_HOST to
point elsewhere than this machine's servers."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "RECOURSE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RABBIT_HOST = os.environ.get("RECOURSE_BENCH_RABBIT_HOST", "127.0.0.1")
RABBITMQCTL_TIMEOUT_S = 60
RABBITMQCTL_ATTEMPTS = 4


@contextmanager
def pg_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """The URL of a new, empty database, dropped on the way out."""
    name = f"recourse_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    # rabbitmqctl fails now and then while the node is busy (another suite adding and deleting
    # vhosts): a few tries before giving up.
    for attempt in range(1, RABBITMQCTL_ATTEMPTS + 1):
        done = subprocess.run(
            ["rabbitmqctl", *args], check=False, capture_output=True, timeout=RABBITMQCTL_TIMEOUT_S
        )
        if done.returncode == 0 or not check:
            return
        if attempt == RABBITMQCTL_ATTEMPTS:
            done.check_returncode()
        time.sleep(attempt)


@contextmanager
def rabbit_vhost() -> Iterator[str]:
    """The amqp URL of a new vhost (guest may use it), deleted on the way out."""
    vhost = f"recourse-bench-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{RABBIT_HOST}:5672/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost, check=False)


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
