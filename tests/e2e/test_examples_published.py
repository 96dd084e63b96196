"""Issue 20, done-when 1, with the deployed processes: each file of `examples/`, sent at once
with `recourse publish` into `recourse worker` (one process, and two with `--processes 2`) and
`recourse relay` with their default settings (only the wait for a subject that never comes is
shortened), ends with the balances, rejections with their reasons, notifications and dead
letters of `recourse replay` of the file, and `recourse verify` finds the same books."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ordered_driver import live_outcome, replay_outcome, wait_settled, well_formed
from sqlalchemy import Engine

from workers.database import make_engine, migrate

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres]

RECOURSE = [sys.executable, "-c", "from workers.cli import app; app()"]
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.jsonl"))


@pytest.fixture
def environment(pg_url: str, rabbit_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": pg_url,
        "BROKER_URL": rabbit_url,
        "METRICS_PORT": "0",
        "UNKNOWN_SUBJECT_RETRY_SECONDS": "3",
        "LOG_FORMAT": "json",
    }


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for process in running:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])
@pytest.mark.parametrize("story", EXAMPLES, ids=lambda path: path.stem)
def test_an_example_published_into_the_processes_books_what_its_replay_books(
    *,
    story: Path,
    processes: int,
    environment: dict[str, str],
    started: list[subprocess.Popen[bytes]],
    pg_url: str,
    sqlite_engine: Engine,
    tmp_path: Path,
) -> None:
    migrated = subprocess.run(
        [*RECOURSE, "migrate"], env=environment, capture_output=True, text=True, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    for name, args in (("worker", ["worker", "--processes", str(processes)]), ("relay", ["relay"])):
        log = (tmp_path / f"{name}.log").open("wb")
        started.append(
            subprocess.Popen([*RECOURSE, *args], env=environment, stdout=log, stderr=log)
        )
    published = subprocess.run(
        [*RECOURSE, "publish", str(story), "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert published.returncode in (0, 1), published.stderr
    summary = json.loads(published.stdout)
    lines = well_formed(story.read_text("utf-8").splitlines())
    assert summary["sent"] == len(lines)

    engine = make_engine(pg_url)
    try:
        wait_settled(engine, len(lines), timeout_s=120)
        live = live_outcome(engine)
    finally:
        engine.dispose()
    migrate(sqlite_engine)
    expected = replay_outcome(lines, sqlite_engine)
    assert live.balances == expected.balances
    assert live.rejections == expected.rejections
    assert live.notifications == expected.notifications
    assert live.dead_letters == expected.dead_letters
    verified = subprocess.run(
        [*RECOURSE, "verify", "--json"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["same"] is True
