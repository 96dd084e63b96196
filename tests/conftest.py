"""Fixtures for the real servers. Each test run gets its own PostgreSQL database and RabbitMQ
vhost and drops them afterwards. Without a server a test skips on a laptop, but under CI
(`CI=true`) it fails: CI never skips."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN_URL = os.environ.get(
    "RECOURSE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RABBIT_HOST = os.environ.get("RECOURSE_TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_MGMT_USER = "guest"


def _missing(server: str, reason: str) -> None:
    message = f"{server} is not reachable ({reason})"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message}: CI needs it running", pytrace=False)
    pytest.skip(f"{message}; start it to run this test")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return PG_ADMIN_URL


def _create_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"recourse_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any connection failure means the server is not there
        admin.dispose()
        _missing("PostgreSQL", str(exc).splitlines()[0])
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    url = _create_database(pg_admin_url)
    yield url
    _drop_database(pg_admin_url, url)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[object]:
    """An engine on a fresh PostgreSQL database with the whole schema migrated."""
    from workers.database import make_engine, migrate

    engine = make_engine(pg_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: object) -> Iterator[object]:
    """An engine on a fresh SQLite file with the whole schema migrated."""
    from pathlib import Path

    from workers.database import make_engine, migrate

    assert isinstance(tmp_path, Path)
    engine = make_engine(f"sqlite:///{tmp_path / 'recourse.sqlite'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def rabbit_url() -> Iterator[str]:
    """amqp URL of a fresh RabbitMQ vhost, deleted after the test."""
    import subprocess

    vhost = f"recourse-test-{uuid.uuid4().hex[:12]}"
    try:
        subprocess.run(
            ["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True, timeout=60
        )
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _missing("RabbitMQ", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    yield f"amqp://guest:guest@{RABBIT_HOST}:5672/{vhost}"
    subprocess.run(
        ["rabbitmqctl", "delete_vhost", vhost], check=False, capture_output=True, timeout=60
    )
