"""Throwaway PostgreSQL databases and RabbitMQ vhosts, so that a run never touches real data
and leaves nothing behind."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

RABBITMQCTL_TIMEOUT_S = 120
RABBITMQCTL_ATTEMPTS = 4


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database named `prefix` and a random tail, dropped on the way
    out; `admin_url` is a database of the server where the role may create databases."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def rabbitmqctl_patiently(*args: str, check: bool = True) -> None:
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
def scratch_vhost(host: str, prefix: str) -> Iterator[str]:
    """The amqp URL of a new vhost named `prefix` and a random tail (guest may use it), on the
    RabbitMQ of `host`, which `rabbitmqctl` runs against; deleted on the way out."""
    vhost = f"{prefix}-{uuid.uuid4().hex[:12]}"
    rabbitmqctl_patiently("add_vhost", vhost)
    try:
        rabbitmqctl_patiently("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{host}:5672/{quote(vhost, safe='')}"
    finally:
        rabbitmqctl_patiently("delete_vhost", vhost, check=False)
