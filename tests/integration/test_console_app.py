"""The console over HTTP (Starlette's TestClient) on PostgreSQL: every route for every role,
CSRF, the decision path through the engine, four eyes (OP-2), evidence (OP-3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_driver import (
    OPERATORS,
    PASSWORD,
    csrf_of,
    seeded_console,
    signed_in,
)
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.testclient import TestClient

from console.publishing import embedded_publisher
from ledger import Book
from policy.config import load_policies

pytestmark = pytest.mark.postgres


@pytest.fixture
def app(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    yield seeded_console(pg_engine, monkeypatch)


PAGES = {
    "/disputes": "read_disputes",
    "/disputes/d1": "read_disputes",
    "/disputes/d1/preview?outcome=partial_refund&amount_minor=100": "read_disputes",
    "/proposals": None,
    "/support": "read_support",
    "/contracts/c1": "read_money",
    "/accounts/escrow:m1": "read_money",
    "/audit": "read_audit",
    "/dead-letters": "manage_dead_letters",
    "/dead-letters?reason=malformed": "manage_dead_letters",
    "/dead-letters/1": "manage_dead_letters",
}
ACTIONS = {
    # Acts only when confirmed: a permitted operator without the confirmation gets a 400.
    "/dead-letters/retry": "manage_dead_letters",
    "/dead-letters/purge": "manage_dead_letters",
}
GRANTED = {
    "support": {"read_disputes", "read_support", "read_money"},
    "dispute_team": {"read_disputes", "read_money"},
    "finance": {"read_disputes", "read_support", "read_money", "read_audit"},
    "admin": {
        "read_disputes",
        "read_support",
        "read_money",
        "read_audit",
        "manage_dead_letters",
    },
}
NAME_OF_ROLE = {role.value: name for name, role in reversed(list(OPERATORS.items()))}


def test_every_page_and_api_route_answers_each_role_and_refuses_strangers(app: FastAPI) -> None:
    anonymous = TestClient(app, follow_redirects=False)
    token = csrf_of(anonymous.get("/signin").text)
    for path in PAGES:
        page = anonymous.get(path)
        assert page.status_code == 303 and page.headers["location"].startswith("/signin")
        assert anonymous.get(f"/api/v1{path}").status_code == 401
    for path in ACTIONS:
        form = anonymous.post(path, data={"ids": "1", "confirm": "yes", "csrf_token": token})
        assert form.status_code == 303 and form.headers["location"].startswith("/signin")
        api = anonymous.post(f"/api/v1{path}", json={"ids": [1]}, headers={"X-CSRF-Token": token})
        assert api.status_code == 401
    for role, name in NAME_OF_ROLE.items():
        client, token = signed_in(app, name)
        for path, permission in PAGES.items():
            expected = 200 if permission is None or permission in GRANTED[role] else 403
            assert client.get(path).status_code == expected, (role, path)
            assert client.get(f"/api/v1{path}").status_code == expected, (role, "api", path)
        for path, permission in ACTIONS.items():
            expected = 400 if permission in GRANTED[role] else 403
            form = client.post(path, data={"ids": "1", "csrf_token": token})
            assert form.status_code == expected, (role, path)
            api = client.post(f"/api/v1{path}", json={"ids": [1]}, headers={"X-CSRF-Token": token})
            assert api.status_code == expected, (role, "api", path)
    admin, _ = signed_in(app, "ada")
    assert admin.get("/api/v1/dead-letters").json()["total"] == 2  # nothing was acted on


def test_the_queue_shows_sla_state_filters_and_pages_by_index(app: FastAPI) -> None:
    client, _ = signed_in(app, "alice")
    first = client.get("/api/v1/disputes", params={"status": "overdue"}).json()
    assert [(d["dispute_id"], d["overdue"], d["due_at"]) for d in first["disputes"]] == [
        ("d1", True, "2026-03-10T11:00:00Z"),
        ("d2", True, "2026-03-11T11:00:00Z"),
    ]
    big = client.get("/api/v1/disputes", params={"min_minor": 60000}).json()
    assert [d["dispute_id"] for d in big["disputes"]] == ["d2"]
    assert client.get("/api/v1/disputes", params={"policy": "cadcrowd"}).json()["disputes"] == []
    pages = []
    cursor = ""
    while True:
        page = client.get("/api/v1/disputes", params={"after": cursor}).json()
        pages.append([d["dispute_id"] for d in page["disputes"]])
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert pages == [["d1", "d2"]]
    assert client.get("/api/v1/disputes", params={"status": "nonsense"}).status_code == 422


def test_a_form_without_its_csrf_token_is_refused(app: FastAPI) -> None:
    client, token = signed_in(app, "alice")
    form = {"outcome": "partial_refund", "amount_minor": "20000", "reason": "half done"}
    assert client.post("/disputes/d1/decision", data=form).status_code == 403
    assert client.post("/disputes/d1/decision", data={**form, "csrf_token": "x"}).status_code == 403
    json_body = {"outcome": "partial_refund", "amount_minor": 20000, "reason": "half done"}
    assert client.post("/api/v1/disputes/d1/decision", json=json_body).status_code == 403
    # Another session's token is worth nothing here either.
    _, bobs_token = signed_in(app, "bob")
    refused = client.post(
        "/api/v1/disputes/d1/decision", json=json_body, headers={"X-CSRF-Token": bobs_token}
    )
    assert refused.status_code == 403
    assert client.get("/api/v1/disputes/d1").json()["dispute"]["status"] == "open"
    done = client.post("/disputes/d1/decision", data={**form, "csrf_token": token})
    assert done.status_code == 303


def test_sign_in_is_throttled_after_five_failures(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    for _ in range(5):
        wrong = {"name": "alice", "password": "not it at all", "csrf_token": token}
        assert client.post("/signin", data=wrong).status_code == 401
    right = {"name": "alice", "password": PASSWORD, "csrf_token": token}
    refused = client.post("/signin", data=right)
    assert refused.status_code == 429
    assert "too many failed sign-ins" in refused.text


def test_op1_a_partial_refund_decided_in_the_console_is_booked_and_names_its_operator(
    app: FastAPI, pg_engine: Engine
) -> None:
    """OP-1: the decision goes through the engine; the story and the audit log name alice."""
    client, token = signed_in(app, "alice")
    preview = client.get(
        "/api/v1/disputes/d1/preview", params={"outcome": "partial_refund", "amount_minor": 20000}
    ).json()
    assert preview["preview"]["client_receives_minor"] == 20800
    assert preview["preview"]["released_to_creator_minor"] == 27600
    assert preview["needs_approval"] is False
    answer = client.post(
        "/api/v1/disputes/d1/decision",
        json={"outcome": "partial_refund", "amount_minor": 20000, "reason": "half delivered"},
        headers={"X-CSRF-Token": token},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "published"
    dispute = client.get("/api/v1/disputes/d1").json()
    assert dispute["dispute"]["status"] == "resolved"
    (decision,) = dispute["contract"]["decisions"]
    assert decision["type"] == "dispute.resolved" and decision["result"] == "applied"
    assert [(e["operator"], e["action"]) for e in dispute["audit"]] == [
        ("alice", "decision.published")
    ]
    with pg_engine.connect() as conn:
        book = Book(conn)
        assert book.balance("user:ana", "USD").available_minor == 20800
        assert book.balance("user:ben", "USD").available_minor == 27600
    page = client.get("/disputes/d1").text
    assert "resolved" in page and "alice" in page
    story = client.get("/api/v1/contracts/c1").json()["story"]
    deciders = {line["type"]: line["decided_by"] for line in story if line["source"] == "event"}
    assert deciders["dispute.resolved"] == "alice" and deciders["refund.requested"] is None
    assert 'decided by <span class="decided-by">alice</span>' in client.get("/contracts/c1").text


def test_op2_the_proposer_cannot_approve_and_a_second_operator_publishes(
    app: FastAPI, pg_engine: Engine
) -> None:
    """OP-2 over HTTP: alice proposes a full refund of d2 (936.00 to the client), her approve
    is refused, bob's goes through, and the audit log shows both."""
    alice, alice_token = signed_in(app, "alice")
    proposed = alice.post(
        "/api/v1/disputes/d2/decision",
        json={"outcome": "full_refund", "reason": "wrong work"},
        headers={"X-CSRF-Token": alice_token},
    ).json()
    assert proposed["status"] == "proposed"
    proposal = proposed["proposal_id"]
    own = alice.post(f"/api/v1/proposals/{proposal}/approve", headers={"X-CSRF-Token": alice_token})
    assert own.status_code == 403
    assert "(yours: another operator approves it)" in alice.get("/proposals").text
    assert alice.get("/api/v1/disputes/d2").json()["dispute"]["status"] == "open"
    bob, bob_token = signed_in(app, "bob")
    bob_page = bob.get("/proposals").text
    assert proposal in bob_page
    approved = bob.post(f"/proposals/{proposal}/approve", data={"csrf_token": bob_token})
    assert approved.status_code == 303
    assert bob.get("/api/v1/disputes/d2").json()["dispute"]["status"] == "resolved"
    with pg_engine.connect() as conn:
        assert Book(conn).balance("user:cat", "USD").available_minor == 93600
    ada, _ = signed_in(app, "ada")
    actions = [(e["operator"], e["action"]) for e in ada.get("/api/v1/audit").json()["entries"]]
    assert ("alice", "decision.proposed") in actions
    assert ("bob", "decision.approved") in actions


def test_op3_evidence_is_shown_as_text_or_reported_missing(app: FastAPI, pg_engine: Engine) -> None:
    """OP-3: the dispute page shows what the parties added through the engine
    (`dispute.evidence_added`), markup escaped; a dispute with none says so."""
    client, _ = signed_in(app, "alice")
    assert "No evidence recorded." in client.get("/disputes/d1").text
    assert client.get("/api/v1/disputes/d1").json()["evidence"] == []
    publish = embedded_publisher(pg_engine, load_policies())
    publish(
        {
            "event_id": "e9",
            "type": "dispute.evidence_added",
            "occurred_at": "2026-03-06T09:00:00Z",
            "schema_version": 1,
            "data": {
                "evidence_id": "ev1",
                "dispute_id": "d1",
                "contract_id": "c1",
                "party": "client",
                "text": "<script>alert('x')</script> half the files are missing",
                "attachments": [
                    {
                        "name": "brief.pdf",
                        "media_type": "application/pdf",
                        "size_bytes": 1200,
                        "sha256": "a" * 64,
                        "url": "https://files.example/brief.pdf",
                    }
                ],
            },
        }
    )
    page = client.get("/disputes/d1").text
    assert "&lt;script&gt;alert(" in page
    assert "<script>alert(" not in page
    assert "brief.pdf" in page
    (item,) = client.get("/api/v1/disputes/d1").json()["evidence"]
    assert item["party"] == "client" and item["attachments"][0]["size_bytes"] == 1200


def test_the_contract_statement_and_support_pages_read_the_store(app: FastAPI) -> None:
    client, _ = signed_in(app, "sam")
    story = client.get("/api/v1/contracts/c1").json()
    assert [line["type"] for line in story["story"]][:2] == ["contract.opened", "milestone.funded"]
    statement = client.get("/api/v1/accounts/escrow:m1").json()
    assert statement["statements"][0]["currency"] == "USD"
    assert client.get("/api/v1/accounts/nobody").status_code == 400
    assert client.get("/api/v1/contracts/nope").status_code == 404
    assert client.get("/api/v1/support").json()["requests"] == []
