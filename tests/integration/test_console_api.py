"""The back office's API (/api/v1) over HTTP on PostgreSQL: every endpoint for every role's
token, anonymously and with a revoked token; decisions named after the token's owner (OP-1);
four eyes between two tokens (OP-2); the problem shape of errors; the committed OpenAPI."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from console_driver import CHEAP_HASHER, NOW, console_app, seed, signed_in
from fastapi import FastAPI
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

import console.accounts
from console import audit
from console.api import openapi_document
from console.openapi import COMMITTED, generated, render
from console.roles import Role
from console.tables import api_tokens
from console.tokens import create_token, revoke_token
from ledger import Book
from workers.cli import app as cli
from workers.database import make_engine

pytestmark = pytest.mark.postgres

ROLES = [Role.SUPPORT, Role.FINANCE, Role.ADMIN, Role.DISPUTE_TEAM]
"""dispute_team last: its allowed writes change the store the other rows read."""


@dataclass(frozen=True, slots=True)
class Tokens:
    by_role: dict[Role, str]
    revoked: str


@pytest.fixture
def app(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    monkeypatch.setattr(console.accounts, "_HASHER", CHEAP_HASHER)
    seed(pg_engine)
    yield console_app(pg_engine)


@pytest.fixture
def tokens(pg_engine: Engine) -> Tokens:
    with pg_engine.begin() as conn:
        by_role = {role: create_token(conn, f"bo-{role.value}", role, at=NOW)[1] for role in ROLES}
        old, text = create_token(conn, "bo-old", Role.ADMIN, at=NOW)
        revoke_token(conn, old.token_id, at=NOW)
    return Tokens(by_role, text)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    template: str
    ids: dict[str, str]
    allowed: frozenset[Role]
    granted_status: int  # what an allowed role gets
    body: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return self.template.format(**self.ids)


EVERYONE = frozenset(ROLES)
READERS_OF_SUPPORT = frozenset({Role.SUPPORT, Role.FINANCE, Role.ADMIN})
DECISION = {"outcome": "partial_refund", "amount_minor": 100, "reason": "table"}
REFUND = {"decision": "approve", "reason": "table"}
ADMIN = frozenset({Role.ADMIN})
NO_LETTER = {"ids": [999], "confirm": True}


def endpoints(approve_id: str, reject_id: str) -> list[Endpoint]:
    """Every operation of the API, with the roles that may call it."""
    return [
        Endpoint("GET", "/api/v1/disputes", {}, EVERYONE, 200),
        Endpoint("GET", "/api/v1/disputes/{dispute_id}", {"dispute_id": "d1"}, EVERYONE, 200),
        Endpoint(
            "GET", "/api/v1/disputes/{dispute_id}/preview", {"dispute_id": "d1"}, EVERYONE, 200
        ),
        # A decision on no dispute: the role is checked before the lookup, so a role that may
        # decide learns 404 and one that may not learns 403, and nothing is booked.
        Endpoint(
            "POST",
            "/api/v1/disputes/{dispute_id}/decision",
            {"dispute_id": "nope"},
            frozenset({Role.DISPUTE_TEAM}),
            404,
            DECISION,
        ),
        Endpoint("GET", "/api/v1/support", {}, READERS_OF_SUPPORT, 200),
        Endpoint(
            "POST",
            "/api/v1/support/{request_id}/decision",
            {"request_id": "nope"},
            frozenset({Role.SUPPORT}),
            404,
            REFUND,
        ),
        Endpoint("GET", "/api/v1/proposals", {}, EVERYONE, 200),
        Endpoint(
            "POST",
            "/api/v1/proposals/{proposal_id}/approve",
            {"proposal_id": approve_id},
            frozenset({Role.DISPUTE_TEAM}),
            200,
        ),
        Endpoint(
            "POST",
            "/api/v1/proposals/{proposal_id}/reject",
            {"proposal_id": reject_id},
            frozenset({Role.DISPUTE_TEAM}),
            200,
            {"reason": "table"},
        ),
        Endpoint("GET", "/api/v1/contracts/{contract_id}", {"contract_id": "c1"}, EVERYONE, 200),
        Endpoint("GET", "/api/v1/accounts/{account}", {"account": "escrow:m1"}, EVERYONE, 200),
        Endpoint("GET", "/api/v1/audit", {}, frozenset({Role.FINANCE, Role.ADMIN}), 200),
        Endpoint("GET", "/api/v1/dead-letters", {}, ADMIN, 200),
        # No such letter: as with the decisions, the role is checked first and nothing changes.
        Endpoint(
            "GET", "/api/v1/dead-letters/{dead_letter_id}", {"dead_letter_id": "999"}, ADMIN, 404
        ),
        Endpoint("POST", "/api/v1/dead-letters/retry", {}, ADMIN, 404, NO_LETTER),
        Endpoint("POST", "/api/v1/dead-letters/purge", {}, ADMIN, 404, NO_LETTER),
    ]


def propose_full_refund_of_d2(app: FastAPI) -> str:
    """A pending proposal by alice (936.00 to the client is above the 500.00 threshold)."""
    alice, token = signed_in(app, "alice")
    answer = alice.post(
        "/api/v1/disputes/d2/decision",
        json={"outcome": "full_refund", "reason": "wrong work"},
        headers={"X-CSRF-Token": token},
    )
    assert answer.json()["status"] == "proposed", answer.text
    return str(answer.json()["proposal_id"])


def assert_problem(answer: Any, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status and problem["detail"] and problem["title"]


def test_every_api_endpoint_answers_each_roles_token_and_refuses_strangers(
    app: FastAPI, tokens: Tokens
) -> None:
    table = endpoints(propose_full_refund_of_d2(app), propose_full_refund_of_d2(app))
    documented = {
        (method.upper(), path)
        for path, operations in openapi_document(app.state.api_router)["paths"].items()
        for method in operations
    }
    assert {(item.method, item.template) for item in table} == documented
    client = TestClient(app, follow_redirects=False)
    for item in table:
        anonymous = client.request(item.method, item.path, json=item.body)
        assert_problem(anonymous, 401)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        revoked = client.request(
            item.method, item.path, json=item.body, headers=bearer(tokens.revoked)
        )
        assert_problem(revoked, 401)
        for role in ROLES:
            answer = client.request(
                item.method, item.path, json=item.body, headers=bearer(tokens.by_role[role])
            )
            if role in item.allowed:
                assert answer.status_code == item.granted_status, (item.path, role, answer.text)
            else:
                assert_problem(answer, 403)
    malformed = client.get("/api/v1/disputes", headers={"Authorization": "Basic YTpi"})
    assert_problem(malformed, 401)
    forged = tokens.by_role[Role.ADMIN][:-4] + "AAAA"
    assert_problem(client.get("/api/v1/disputes", headers=bearer(forged)), 401)


def test_a_tokens_decision_names_its_owner_and_four_eyes_needs_another_owner(
    app: FastAPI, tokens: Tokens, pg_engine: Engine
) -> None:
    """OP-1 and OP-2 through the API: a partial refund under the threshold is booked with
    decided_by = the token's owner; a full refund above it waits, its proposer's approval is
    refused, another owner's goes through."""
    with pg_engine.begin() as conn:
        _, second = create_token(conn, "bo-second", Role.DISPUTE_TEAM, at=NOW)
    client = TestClient(app)
    first = bearer(tokens.by_role[Role.DISPUTE_TEAM])
    done = client.post(
        "/api/v1/disputes/d1/decision",
        json={"outcome": "partial_refund", "amount_minor": 20000, "reason": "half delivered"},
        headers=first,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "published"
    assert done.json()["preview"]["preview"]["client_receives_minor"] == 20800
    story = client.get("/api/v1/contracts/c1", headers=first).json()
    (decision,) = story["decisions"]
    assert decision["decided_by"] == "bo-dispute_team" and decision["result"] == "applied"
    with pg_engine.connect() as conn:
        assert Book(conn).balance("user:ana", "USD").available_minor == 20800

    proposed = client.post(
        "/api/v1/disputes/d2/decision",
        json={"outcome": "full_refund", "reason": "wrong work"},
        headers=first,
    ).json()
    assert proposed["status"] == "proposed"
    own = client.post(f"/api/v1/proposals/{proposed['proposal_id']}/approve", headers=first)
    assert_problem(own, 403)
    approved = client.post(
        f"/api/v1/proposals/{proposed['proposal_id']}/approve", headers=bearer(second)
    )
    assert approved.status_code == 200 and approved.json()["status"] == "published"
    assert client.get("/api/v1/disputes/d2", headers=first).json()["dispute"]["status"] == (
        "resolved"
    )
    audit = client.get("/api/v1/audit", headers=bearer(tokens.by_role[Role.ADMIN])).json()
    actions = [(entry["operator"], entry["action"]) for entry in audit["entries"]]
    assert ("bo-dispute_team", "decision.proposed") in actions
    assert ("bo-second", "decision.approved") in actions


def test_a_cookie_session_reads_the_api_but_writes_only_with_its_csrf_token(
    app: FastAPI,
) -> None:
    client, token = signed_in(app, "alice")
    assert client.get("/api/v1/disputes").status_code == 200
    body = {"outcome": "release_to_creator", "reason": "delivered"}
    assert_problem(client.post("/api/v1/disputes/d1/decision", json=body), 403)
    done = client.post("/api/v1/disputes/d1/decision", json=body, headers={"X-CSRF-Token": token})
    assert done.status_code == 200, done.text


def test_the_queue_pages_by_cursor_and_errors_are_problems(app: FastAPI, tokens: Tokens) -> None:
    client = TestClient(app)
    headers = bearer(tokens.by_role[Role.FINANCE])
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"after": cursor} if cursor else {})}
        page = client.get("/api/v1/disputes", params=params, headers=headers).json()
        pages.append([item["dispute_id"] for item in page["disputes"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["d1"], ["d2"]]
    invalid = client.get("/api/v1/disputes", params={"limit": 0}, headers=headers)
    assert_problem(invalid, 422)
    assert invalid.json()["errors"][0]["loc"] == ["query", "limit"]
    assert_problem(client.get("/api/v1/disputes", params={"after": "x"}, headers=headers), 400)
    assert_problem(client.get("/api/v1/disputes/nope", headers=headers), 404)
    assert_problem(client.get("/api/v1/nothing-here", headers=headers), 404)
    served = client.get("/api/v1/openapi.json").json()
    assert served == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_the_committed_openapi_document_is_the_generated_one() -> None:
    """docs/openapi.json is regenerated with `python -m console.openapi`."""
    assert COMMITTED.read_text(encoding="utf-8") == render(generated())


def test_tokens_are_made_listed_and_revoked_from_the_command_line(
    pg_url: str, pg_engine: Engine
) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["tokens", "add", "backoffice", "--role", "support", "--db", pg_url])
    assert made.exit_code == 0, made.output
    text = made.stdout.strip().splitlines()[-1]
    assert text.startswith("rct_")
    listed = runner.invoke(cli, ["tokens", "list", "--json", "--db", pg_url])
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["owner"] == "backoffice" and row["role"] == "support" and row["revoked_at"] is None
    assert row["token_id"] in text and text.split("_", 2)[2] not in listed.stdout
    revoked = runner.invoke(cli, ["tokens", "revoke", row["token_id"], "--db", pg_url])
    assert revoked.exit_code == 0, revoked.output
    listed = runner.invoke(cli, ["tokens", "list", "--json", "--db", pg_url])
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["revoked_at"] is not None
    unknown = runner.invoke(cli, ["tokens", "revoke", "nope", "--db", pg_url])
    assert unknown.exit_code != 0
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(api_tokens.c.secret_sha256)).scalar_one()
            trail = [(entry.action, entry.details["token_id"]) for entry in audit.entries(conn)]
    finally:
        engine.dispose()
    secret = text.split("_", 2)[2]
    assert stored == hashlib.sha256(secret.encode()).hexdigest() and secret not in stored
    assert trail == [("token.revoked", row["token_id"]), ("token.created", row["token_id"])]
