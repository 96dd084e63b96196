"""The stock Alembic CLI works on the repository's alembic.ini: `alembic check` finds no
difference between the tables the code describes and a database `recourse migrate` built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from workers.cli import app
from workers.database import alembic_config

ROOT = Path(__file__).resolve().parents[2]


def alembic(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"db={url}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def recourse_migrate(url: str) -> None:
    result = CliRunner().invoke(app, ["migrate", "--db", url])
    assert result.exit_code == 0, result.output


@pytest.mark.postgres
def test_alembic_check_finds_nothing_to_do_after_recourse_migrate(pg_url: str) -> None:
    recourse_migrate(pg_url)

    checked = alembic("check", url=pg_url)
    current = alembic("current", url=pg_url)

    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected." in checked.stdout + checked.stderr
    heads = ScriptDirectory.from_config(alembic_config(create_engine("sqlite://"))).get_heads()
    assert sorted(current.stdout.split()) == sorted([*heads, *["(head)"] * len(heads)])


@pytest.mark.postgres
def test_alembic_check_fails_when_the_database_lacks_a_column(pg_url: str) -> None:
    """Guards the test above: a passing check must not come from comparing nothing."""
    recourse_migrate(pg_url)
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE outbox DROP COLUMN sent_at"))
    engine.dispose()

    checked = alembic("check", url=pg_url)

    assert checked.returncode != 0
    assert "New upgrade operations detected" in checked.stdout
    assert "'add_column', None, 'outbox', Column('sent_at'" in checked.stdout
