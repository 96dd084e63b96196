"""A worker, a relay, a scheduler and the console started on one host with nothing but
DATABASE_URL and BROKER_URL set (and the console's key): each takes its own default port
(`workers.metrics_ports`, CONSOLE_PORT 8080) and answers on it, and a normal run through them,
idle connections dropped by RabbitMQ and a SIGTERM included, writes no error-level line.

The broker URL asks for 2-second heartbeats, so RabbitMQ closes the connections the processes
leave idle (Dramatiq's per-thread publishing connections) within seconds instead of minutes:
before pika's own lines were quieted (`workers.logging.QUIET_LIBRARIES`) this run logged 27
error-level "Connection reset by peer" lines in 40 s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, Select, func, select

from console.settings import ConsoleSettings
from policy.tables import outbox
from tests.e2e.faults.processes import scrape
from workers.intake.tables import event_log
from workers.metrics_ports import DEFAULT_METRICS_PORTS

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
RECOURSE = [sys.executable, "-c", "from workers.cli import app; app()"]
CONSOLE_PORT = ConsoleSettings.model_fields["console_port"].default
OWN_SERIES = {
    "worker": "recourse_events_total",
    "relay": "recourse_outbox_unsent",
    "scheduler": "recourse_scheduler_leader",
}
"""A series each role exports, so a scrape shows which process answered."""
IDLE_S = 12.0
"""Longer than RabbitMQ takes to drop a connection that misses 2-second heartbeats."""


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout_s: float = 60.0,
    state: Callable[[], object] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: {state()}")
        time.sleep(0.2)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: a connection of an earlier run in TIME_WAIT does not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text: str = response.read().decode()
        return text


def console_answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{CONSOLE_PORT}/signin", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def error_lines(log: str) -> list[str]:
    """The error-level (and worse) lines of a JSON log; a line that is not JSON counts too."""
    found = []
    for line in log.splitlines():
        try:
            level = json.loads(line).get("level")
        except json.JSONDecodeError:
            found.append(line)
            continue
        if level in {"error", "critical", "exception"}:
            found.append(line)
    return found


@pytest.fixture
def started(
    pg_url: str, pg_engine: Engine, rabbit_url: str, tmp_path: Path
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    taken = [
        port for port in [*DEFAULT_METRICS_PORTS.values(), CONSOLE_PORT] if not port_is_free(port)
    ]
    assert not taken, f"a default port is taken on this host before the test: {taken}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"METRICS_PORT", "METRICS_HOST", "CONSOLE_PORT", "CONSOLE_HOST"}
    }
    env |= {
        "DATABASE_URL": pg_url,
        "BROKER_URL": f"{rabbit_url}?heartbeat=2",
        "CONSOLE_SECRET_KEY": "k" * 48,
        "LOG_FORMAT": "json",
        "TICK_INTERVAL_SECONDS": "1",
    }
    # As deployed (docs/operations.md): `recourse migrate` with BROKER_URL set first declares
    # the exchange the scheduler publishes its ticks to.
    migrated = subprocess.run(
        [*RECOURSE, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    running: dict[str, subprocess.Popen[bytes]] = {}
    for role in ("worker", "relay", "scheduler", "console"):
        log = (tmp_path / f"{role}.log").open("wb")
        running[role] = subprocess.Popen(
            [*RECOURSE, role], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    yield running
    for process in running.values():
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_every_process_takes_its_own_default_port_and_a_normal_run_logs_no_error(
    started: dict[str, subprocess.Popen[bytes]], pg_engine: Engine, rabbit_url: str, tmp_path: Path
) -> None:
    for role, port in DEFAULT_METRICS_PORTS.items():
        wait_until(lambda port=port: scrape(port, "process_start_time_seconds") is not None, role)
        assert started[role].poll() is None, (tmp_path / f"{role}.log").read_text()
    wait_until(console_answers, "the console's sign-in page")

    published = subprocess.run(
        [*RECOURSE, "publish", str(ROOT / "examples" / "spectrum-week.jsonl"), "--json"],
        env={**os.environ, "BROKER_URL": rabbit_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The example file keeps one malformed line on purpose: publish refuses it (exit 1).
    sent = json.loads(published.stdout)["sent"]
    assert sent > 0, published.stdout + published.stderr
    unsent = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
    total = select(func.count()).select_from(outbox)
    events = select(func.count()).select_from(event_log).where(event_log.c.kind == "event")
    # Not every line sent becomes a logged event (the file repeats some on purpose, and the
    # events after the refused line park as unknown_subject): the run goes on until the
    # notifications it made are out, then idles.
    wait_until(
        lambda: (
            _count(pg_engine, events) > 0
            and _count(pg_engine, unsent) == 0 < _count(pg_engine, total)
        ),
        "every event taken in and every notification sent",
        state=lambda: [_count(pg_engine, query) for query in (events, unsent, total)],
    )
    time.sleep(IDLE_S)

    for role, port in DEFAULT_METRICS_PORTS.items():
        assert f"\n{OWN_SERIES[role]}" in metrics_text(port), role
    assert 'result="applied"' in metrics_text(DEFAULT_METRICS_PORTS["worker"])

    for process in started.values():
        process.send_signal(signal.SIGTERM)
    codes = {role: process.wait(timeout=60) for role, process in started.items()}
    logs = {role: (tmp_path / f"{role}.log").read_text(errors="replace") for role in started}
    # uvicorn re-raises the SIGTERM it handled once it has shut down, as its exit status.
    assert codes == {"worker": 0, "relay": 0, "scheduler": 0, "console": -signal.SIGTERM}, logs
    assert {role: error_lines(log) for role, log in logs.items()} == {role: [] for role in started}


def _count(engine: Engine, query: Select[tuple[int]]) -> int:
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()
