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


def test_check_fails_on_a_database_behind_the_code_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    url = f"sqlite:///{missing}"

    behind = CliRunner().invoke(app, ["migrate", "--check", "--db", url])

    assert behind.exit_code == 1
    assert behind.output == (
        f"error: the schema on {url} is behind the code (it has no Recourse schema; the code "
        f"has {', '.join(REVISIONS)}); run `recourse migrate` with the same database\n"
    )
    assert not missing.exists()


def test_to_goes_back_one_revision_and_forward_again_and_check_follows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert CliRunner().invoke(app, ["migrate", "--db", url]).exit_code == 0
    ledger_head = next(rev for rev in REVISIONS if rev.startswith("ledger"))
    ledger_before = f"ledger{int(ledger_head.removeprefix('ledger')) - 1:04d}"

    back = json.loads(
        CliRunner().invoke(app, ["migrate", "--db", url, "--to", ledger_before, "--json"]).output
    )
    check_back = CliRunner().invoke(app, ["migrate", "--check", "--json", "--db", url])
    forward = CliRunner().invoke(app, ["migrate", "--db", url, "--to", ledger_head])
    check_forward = CliRunner().invoke(app, ["migrate", "--check", "--db", url])

    assert back["action"] == "downgraded"
    assert back["revisions_after"] == sorted(
        [ledger_before, *(rev for rev in REVISIONS if rev != ledger_head)]
    )
    assert check_back.exit_code == 1
    report = json.loads(check_back.output)
    assert (report["ok"], report["behind"], report["ahead"]) == (False, [ledger_head], [])
    assert forward.exit_code == 0
    assert forward.output.startswith(f"upgraded the schema on {url} from ")
    assert check_forward.exit_code == 0
    assert check_forward.output == (
        f"the schema on {url} is at the code's revisions ({', '.join(REVISIONS)})\n"
    )


def test_to_an_unknown_revision_is_a_usage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"

    result = CliRunner().invoke(app, ["migrate", "--db", url, "--to", "nope0001"])

    assert result.exit_code == 2
    assert result.output.startswith("error: no revision 'nope0001'; name one of ")
