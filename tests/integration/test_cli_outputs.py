"""`audit` never creates a database; `schema` prints JSON with --json and fails in the
`error: <what>; <what to do>` form."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from messages.schema import SCHEMA_DIR
from workers.cli import app


def test_audit_of_a_missing_sqlite_file_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"

    result = CliRunner().invoke(app, ["audit", "--db", f"sqlite:///{missing}"])

    assert result.exit_code == 1
    assert result.output == (
        f"error: the SQLite file of --db (sqlite:///{missing}) does not exist; "
        "check the path, or run `recourse migrate` to create the database\n"
    )
    assert not missing.exists()


def test_schema_check_json_is_one_object(tmp_path: Path) -> None:
    current = CliRunner().invoke(app, ["schema", "--check", "--json"])
    empty = CliRunner().invoke(app, ["schema", "--check", "--json", "--dir", str(tmp_path)])

    assert current.exit_code == 0
    assert json.loads(current.output) == {
        "directory": str(SCHEMA_DIR),
        "ok": True,
        "differences": [],
    }
    assert empty.exit_code == 1
    report = json.loads(empty.output)
    assert report["ok"] is False
    assert "asyncapi.yaml: missing" in report["differences"]


def test_schema_json_lists_the_files_written(tmp_path: Path) -> None:
    first = CliRunner().invoke(app, ["schema", "--json", "--dir", str(tmp_path)])
    second = CliRunner().invoke(app, ["schema", "--json", "--dir", str(tmp_path)])

    assert first.exit_code == 0
    written = json.loads(first.output)
    assert "asyncapi.yaml" in written["changed"]
    assert sorted(written["changed"]) == sorted(path.name for path in tmp_path.iterdir())
    assert json.loads(second.output) == {"directory": str(tmp_path), "changed": []}


def test_a_stale_schema_check_ends_with_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schema", "--check", "--dir", str(tmp_path)])

    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"error: {tmp_path} differs from the message models; "
        "run `recourse schema` and commit the result"
    )
