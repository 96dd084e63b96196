"""A long-running process that cannot use its database or its broker at start-up says so in
one line, naming the setting and its URL without the password, and exits non-zero at once
instead of retrying for ever."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy.engine import make_url

from tests.e2e.faults.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RECOURSE = [sys.executable, "-c", "from workers.cli import app; app()"]
PASSWORD = "s3cret-pw"
LIMIT_S = 30.0


LONG_RUNNING = ["worker", "relay", "scheduler", "run", "console"]
"""Every command that runs until stopped."""


def run(args: list[str], **settings: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        **os.environ,
        "METRICS_PORT": "0",
        "LOG_FORMAT": "json",
        # The console refuses to start on a broker without a key that signs its sessions.
        "CONSOLE_SECRET_KEY": "k" * 48,
        "CONSOLE_PORT": str(free_port()),
        **settings,
    }
    started = time.monotonic()
    done = subprocess.run(
        [*RECOURSE, *args], env=env, capture_output=True, text=True, timeout=LIMIT_S, check=False
    )
    return done, time.monotonic() - started


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert "; " in lines[0]
    assert PASSWORD not in lines[0]
    return lines[0]


def missing_database_url(pg_admin_url: str) -> str:
    missing = make_url(pg_admin_url).set(
        password=PASSWORD, database=f"recourse_missing_{uuid.uuid4().hex[:8]}"
    )
    return missing.render_as_string(hide_password=False)


def closed_broker_url(port: int | None = None) -> str:
    return f"amqp://guest:{PASSWORD}@127.0.0.1:{port or free_port()}/"


@pytest.fixture
def migrated_url(pg_url: str) -> str:
    from workers.database import make_engine, migrate

    engine = make_engine(pg_url)
    migrate(engine)
    engine.dispose()
    return pg_url


@pytest.mark.parametrize("command", LONG_RUNNING)
def test_a_closed_broker_port_is_one_line_and_a_failed_exit(
    command: str, migrated_url: str
) -> None:
    port = free_port()

    done, took_s = run([command], DATABASE_URL=migrated_url, BROKER_URL=closed_broker_url(port))

    line = one_error_line(done)
    assert done.returncode == 1
    assert took_s < LIMIT_S
    assert f"cannot reach the broker amqp://guest:***@127.0.0.1:{port}/ from BROKER_URL" in line
    assert "(Connection refused)" in line


@pytest.mark.parametrize("command", [*LONG_RUNNING, "migrate"])
def test_a_database_that_does_not_exist_is_one_line_and_a_failed_exit(
    command: str, pg_admin_url: str
) -> None:
    url = missing_database_url(pg_admin_url)
    database = make_url(url).database

    done, took_s = run([command], DATABASE_URL=url, BROKER_URL="amqp://guest:guest@127.0.0.1:5672/")

    line = one_error_line(done)
    assert done.returncode == 1
    assert took_s < LIMIT_S
    assert f"cannot use the database {make_url(url).render_as_string()} from DATABASE_URL" in line
    assert f'database "{database}" does not exist' in line


@pytest.mark.parametrize("command", ["worker", "relay", "scheduler", "run", "console"])
def test_a_database_never_migrated_is_named_with_the_command_that_fixes_it(
    command: str, pg_url: str
) -> None:
    done, _ = run([command], DATABASE_URL=pg_url, BROKER_URL=closed_broker_url())

    line = one_error_line(done)
    assert done.returncode == 1
    assert "has no Recourse schema; run `recourse migrate` with the same DATABASE_URL" in line
