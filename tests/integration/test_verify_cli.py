"""`recourse verify` from the command line: the same books on a database the ordered runtime
filled, a difference and exit 1 on one changed behind the engine's back, one line on a
database that is not there."""

from __future__ import annotations

import json
from pathlib import Path

from ordered_driver import wait_settled
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from ledger.tables import balances
from workers.cli import app
from workers.runtime import Runtime, WorkerHandle
from workers.settings import Settings

EXAMPLE = Path(__file__).parents[2] / "examples" / "sc6-worked-example.jsonl"


def test_verify_reports_the_same_books_then_a_changed_balance(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    runtime = Runtime.build(Settings(broker_url=None, sweep_seconds=0.2), engine=sqlite_engine)
    handle: WorkerHandle = runtime.start_worker(threads=1, timeout_ms=50)
    try:
        for line in EXAMPLE.read_text("utf-8").splitlines():
            runtime.intake.submit(line)
        wait_settled(sqlite_engine, len(EXAMPLE.read_text("utf-8").splitlines()))
    finally:
        handle.stop()
    url = sqlite_engine.url.render_as_string(hide_password=False)

    same = CliRunner().invoke(app, ["verify", "--db", url, "--json"])
    assert same.exit_code == 0, same.output
    result = json.loads(same.output)
    assert result["same"] is True
    assert result["steps"] == len(EXAMPLE.read_text("utf-8").splitlines())
    assert result["transfers_compared"] > 0

    with sqlite_engine.begin() as conn:
        conn.execute(update(balances).values(posted_credits=balances.c.posted_credits + 1))
    changed = CliRunner().invoke(app, ["verify", "--db", url])
    assert changed.exit_code == 1
    assert "differences" in changed.output and "balance " in changed.output


def test_verify_of_a_database_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.sqlite'}"
    result = CliRunner().invoke(app, ["verify", "--db", missing])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert not (tmp_path / "missing.sqlite").exists()
