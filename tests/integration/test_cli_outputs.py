"""Every command that prints has `--json`, and every command fails in one form, one line
`error: <what>; <what to do>` on stderr (a usage mistake included); `audit` and `health` never
create a database; `schema` prints JSON with --json."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
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


LONG_RUNNING = {"worker", "relay", "scheduler", "run", "console"}
"""The commands that run until stopped and print only their log."""
ERROR_LINE = re.compile(r"^error: [^\n]+; [^\n]+\n$")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """A command that configured logging leaves a handler on CliRunner's stream, closed once
    the invocation ends; the next command's log lines would fail on it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def leaf_commands() -> dict[str, Any]:
    """Every command of the app by its path (`dlq list`), groups walked."""
    root = typer.main.get_command(app)
    found: dict[str, Any] = {}

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "list_commands"):
            context = command.make_context(
                path[-1] if path else "recourse", [], resilient_parsing=True
            )
            for name in command.list_commands(context):
                found_command = command.get_command(context, name)
                # The root lists its commands unloaded (workers/cli/lazy.py): load each here.
                listed = getattr(found_command, "listed", None)
                walk(listed.load() if listed is not None else found_command, [*path, name])
        else:
            found[" ".join(path)] = command

    walk(root, [])
    return found


def test_every_command_that_prints_has_json() -> None:
    without = {
        path
        for path, command in leaf_commands().items()
        if "--json" not in {opt for param in command.params for opt in param.opts}
    }

    assert without == LONG_RUNNING


def failing_invocations(tmp_path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """For every command, a call that fails for a reason an operator can fix."""
    missing = f"sqlite:///{tmp_path / 'missing.sqlite'}"
    closed_broker = "amqp://guest:guest@127.0.0.1:1/"
    on_missing_db = {"DATABASE_URL": missing}
    no_broker = {"BROKER_URL": ""}
    long_running = {"DATABASE_URL": missing, "BROKER_URL": closed_broker}
    return {
        "migrate": (["migrate", "--db", f"sqlite:///{tmp_path / 'no' / 'such.sqlite'}"], {}),
        "replay": (["replay", str(tmp_path / "missing.jsonl")], {}),
        "verify": (["verify", "--db", missing], {}),
        "audit": (["audit", "--db", missing], {}),
        "schema": (["schema", "--check", "--dir", str(tmp_path)], {}),
        "publish": (["publish", "-"], no_broker),
        "contract": (["contract", "c1", "--db", missing], {}),
        "balance": (["balance", "user:u1", "--db", missing], {}),
        "statement": (["statement", "user:u1", "--db", missing], {}),
        "disputes": (["disputes", "--db", missing], {}),
        "decide": (["decide", "d1", "--outcome", "full_refund"], no_broker),
        "health": (["health", "--max-pending-seconds", "soon"], on_missing_db),
        "dlq list": (["dlq", "list", "--db", missing], {}),
        "dlq show": (["dlq", "show", "1", "--db", missing], {}),
        "dlq retry": (["dlq", "retry", "--all", "--db", missing], {}),
        "dlq purge": (["dlq", "purge", "--all", "--yes", "--db", missing], {}),
        "users add": (["users", "add", "ann", "--role", "nobody"], on_missing_db),
        "tokens add": (["tokens", "add", "office", "--role", "support", "--db", missing], {}),
        "tokens list": (["tokens", "list", "--db", missing], {}),
        "tokens revoke": (["tokens", "revoke", "t1", "--db", missing], {}),
        "audit-log": (["audit-log", "--db", missing], {}),
        **{command: ([command], long_running) for command in LONG_RUNNING - {"run"}},
        # `run` creates its SQLite schema itself, but not the folder of the file.
        "run": (["run"], {**long_running, "DATABASE_URL": f"sqlite:///{tmp_path / 'no' / 'x'}"}),
    }


def test_the_walk_covers_every_command(tmp_path: Path) -> None:
    assert set(failing_invocations(tmp_path)) == set(leaf_commands())


@pytest.mark.parametrize("command", sorted(leaf_commands()))
def test_every_command_fails_in_one_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args, env = failing_invocations(tmp_path)[command]
    monkeypatch.setenv("CONSOLE_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("METRICS_PORT", "0")

    result = CliRunner().invoke(app, args, env=env)

    assert result.exit_code in {1, 2}, result.output
    # `schema --check` lists the files that differ before its error line, as `--json` lists
    # them in "differences"; every other command prints its one line alone.
    stderr = result.stderr.splitlines(keepends=True)
    assert ERROR_LINE.match(stderr[-1] if command == "schema" else result.stderr), result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "missing.sqlite").exists()


@pytest.mark.parametrize("command", sorted(leaf_commands()))
def test_every_command_names_a_usage_mistake_in_one_line(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--no-such-option"])

    assert result.exit_code == 2
    # Click may suggest a close option in parentheses.
    assert re.fullmatch(
        r"error: No such option: --no-such-option( \(Possible options: [^)]+\))?; "
        rf"see `recourse {command} --help`\n",
        result.stderr,
    ), result.stderr


def test_health_of_a_missing_sqlite_file_fails_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"

    result = CliRunner().invoke(app, ["health"], env={"DATABASE_URL": f"sqlite:///{missing}"})

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        f"FAIL database: sqlite:///{missing}: the SQLite file does not exist"
    )
    assert not missing.exists()
