"""The console's audit log exported as JSON Lines (issue 22): every entry, every field, oldest
first, and `--after` taking up where an earlier export stopped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from console import audit
from workers.cli import app

pytestmark = pytest.mark.postgres

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_audit_log_exports_as_json_lines_oldest_first(pg_url: str, pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        audit.record(conn, at=AT, operator="alice", action="signin", subject="alice")
        audit.record(
            conn,
            at=AT + timedelta(minutes=1),
            operator="alice",
            action="proposal.created",
            subject="d1",
            details={"outcome": "partial_refund", "amount_minor": 60000, "note": "<b>x</b>"},
        )
        audit.record(
            conn,
            at=AT + timedelta(minutes=2),
            operator="bob",
            action="proposal.approved",
            subject="d1",
            details={"proposal_id": "p1"},
        )
    runner = CliRunner()

    exported = runner.invoke(app, ["audit-log", "--json", "--db", pg_url])

    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(line["operator"], line["action"]) for line in lines] == [
        ("alice", "signin"),
        ("alice", "proposal.created"),
        ("bob", "proposal.approved"),
    ]
    assert lines[1] == {
        "seq": lines[1]["seq"],
        "at": "2026-03-02T09:01:00Z",
        "operator": "alice",
        "action": "proposal.created",
        "subject": "d1",
        "details": {"outcome": "partial_refund", "amount_minor": 60000, "note": "<b>x</b>"},
    }
    rest = runner.invoke(
        app, ["audit-log", "--json", "--after", str(lines[0]["seq"]), "--db", pg_url]
    )
    assert [json.loads(line)["action"] for line in rest.stdout.splitlines()] == [
        "proposal.created",
        "proposal.approved",
    ]
    text = runner.invoke(app, ["audit-log", "--db", pg_url])
    assert text.exit_code == 0
    assert [line.split()[-2:] for line in text.stdout.splitlines()] == [
        ["signin", "alice"],
        ["proposal.created", "d1"],
        ["proposal.approved", "d1"],
    ]
