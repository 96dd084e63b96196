"""`recourse migrate` says what it did: created the schema, upgraded it, or found it current."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from typer.testing import CliRunner

from workers.cli import app
from workers.database import alembic_config

REVISIONS = sorted(
    ScriptDirectory.from_config(alembic_config(create_engine("sqlite://"))).get_heads()
)
"""The newest revision of every package's branch, as `migrate` reports them."""


def test_an_empty_database_is_created_and_then_found_up_to_date(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"

    first = CliRunner().invoke(app, ["migrate", "--db", url])
    second = CliRunner().invoke(app, ["migrate", "--db", url])

    assert first.exit_code == 0
    assert first.output.startswith(f"created the schema on {url}: ")
    assert first.output.endswith(f"tables, revisions {', '.join(REVISIONS)}\n")
    assert second.output == f"the schema on {url} is already up to date ({', '.join(REVISIONS)})\n"


def test_json_names_the_revisions_and_the_tables_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"

    first = json.loads(CliRunner().invoke(app, ["migrate", "--db", url, "--json"]).output)
    second = json.loads(CliRunner().invoke(app, ["migrate", "--db", url, "--json"]).output)

    assert first["action"] == "created"
    assert first["database"] == url
    assert first["revisions_before"] == []
    assert first["revisions_after"] == REVISIONS
    assert {"ledger_accounts", "ledger_transfers", "inbox", "outbox", "deadlines"} <= set(
        first["tables_created"]
    )
    assert second == {
        **first,
        "action": "unchanged",
        "revisions_before": REVISIONS,
        "tables_created": [],
    }


def test_a_missing_folder_is_one_error_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent' / 'new.sqlite'}"

    result = CliRunner().invoke(app, ["migrate", "--db", url])

    assert result.exit_code == 1
    assert result.output == (
        f"error: the folder of the SQLite file of --db ({url}) does not exist; "
        "check the path, or create the folder\n"
    )
    assert not (tmp_path / "absent").exists()
