"""Issue 22, done-when 3: schemathesis, from the committed OpenAPI document, against the API
served by a real uvicorn over HTTP on PostgreSQL: no server error, no undocumented status or
media type, no answer that breaks its schema.

Four runs, each with the token of a role that reaches its operations (the dispute team's
decisions and reads; support's queue and decisions; finance's audit log; an administrator's
dead letters, two of them stored), so no operation is only ever answered 403. Examples are
limited to keep the test near 60 s on a CI core.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_driver import CHEAP_HASHER, NOW, console_app, dead_letters, seed, served_over_http
from sqlalchemy import Engine

import console.accounts
from console.openapi import COMMITTED
from console.roles import Role
from console.tokens import create_token

pytestmark = pytest.mark.postgres

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)
RUNS = [
    (Role.DISPUTE_TEAM, "^/api/v1/(disputes|proposals|contracts|accounts)"),
    (Role.SUPPORT, "^/api/v1/support"),
    (Role.FINANCE, "^/api/v1/audit"),
    (Role.ADMIN, "^/api/v1/dead-letters"),
]


@pytest.fixture
def served(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(console.accounts, "_HASHER", CHEAP_HASHER)
    seed(pg_engine)
    dead_letters(pg_engine)
    with served_over_http(console_app(pg_engine)) as url:
        yield url


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    served: str, pg_engine: Engine, tmp_path: Path
) -> None:
    for role, paths in RUNS:
        with pg_engine.begin() as conn:
            _, token = create_token(conn, f"fuzz-{role.value}", role, at=NOW)
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                str(COMMITTED),
                "--url",
                served,
                "--header",
                f"Authorization: Bearer {token}",
                "--include-path-regex",
                paths,
                "--checks",
                CHECKS,
                "--max-examples",
                "10",
                "--seed",
                "22",
                "--generation-database",
                "none",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp_path,
            check=False,
        )
        assert run.returncode == 0, f"{role.value}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
        assert "passed" in run.stdout and "Selected:" in run.stdout
