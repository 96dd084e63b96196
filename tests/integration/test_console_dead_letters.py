"""The console's dead letters on PostgreSQL, over HTTP: an administrator lists them (filtered
by reason, paged by index), reads one with its body as text, retries and purges through the
engine's own dead-letter code (`workers.dlq`), each action confirmed, CSRF-checked, audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_driver import NOW, seeded_console, signed_in
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.testclient import TestClient

from console.roles import Role
from console.tokens import create_token

pytestmark = pytest.mark.postgres

MALFORMED, UNAUTHORIZED = 1, 2


@pytest.fixture
def app(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    yield seeded_console(pg_engine, monkeypatch)


def test_the_list_shows_each_letter_filters_by_reason_and_pages_by_index(app: FastAPI) -> None:
    admin, _ = signed_in(app, "ada")
    listed = admin.get("/api/v1/dead-letters").json()
    assert listed["total"] == 2 and listed["next_before"] is None
    assert [
        (item["dead_letter_id"], item["reason"], item["event_type"], item["event_id"])
        for item in listed["dead_letters"]
    ] == [
        (UNAUTHORIZED, "unauthorized_producer", "dispute.evidence_added", "e20"),
        (MALFORMED, "malformed", None, None),
    ]
    assert listed["dead_letters"][0]["producer"] == "shop"
    older = admin.get("/api/v1/dead-letters", params={"before": UNAUTHORIZED}).json()
    assert [item["dead_letter_id"] for item in older["dead_letters"]] == [MALFORMED]
    only = admin.get("/api/v1/dead-letters", params={"reason": "malformed"}).json()
    assert only["total"] == 1 and only["dead_letters"][0]["dead_letter_id"] == MALFORMED
    page = admin.get("/dead-letters", params={"reason": "unauthorized_producer"}).text
    assert "e20" in page and "dispute.evidence_added" in page and "shop" in page
    assert 'href="/dead-letters/1"' not in page
    assert admin.get("/dead-letters", params={"reason": "nonsense"}).status_code == 400


def test_a_letter_shows_its_body_as_text_and_its_problems_with_their_fields(
    app: FastAPI,
) -> None:
    admin, _ = signed_in(app, "ada")
    page = admin.get(f"/dead-letters/{MALFORMED}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "<code>body</code>" in page  # the malformed body's problem names its field
    shown = admin.get(f"/api/v1/dead-letters/{MALFORMED}").json()
    assert shown["body"].startswith('{"event_id": "<script>')
    assert shown["problems"] and shown["problems"][0][0] == "body"
    assert admin.get("/dead-letters/999").status_code == 404


def test_a_confirmed_retry_sends_the_letter_through_the_intake_and_is_audited(
    app: FastAPI,
) -> None:
    admin, token = signed_in(app, "ada")
    unconfirmed = admin.post(
        "/dead-letters/retry", data={"ids": [UNAUTHORIZED], "csrf_token": token}
    )
    assert unconfirmed.status_code == 400 and "confirmation" in unconfirmed.text
    assert admin.get("/api/v1/dead-letters").json()["total"] == 2
    done = admin.post(
        "/dead-letters/retry",
        data={"ids": [UNAUTHORIZED, MALFORMED], "confirm": "yes", "csrf_token": token},
    )
    assert done.status_code == 200
    assert f"retried {UNAUTHORIZED}: submitted again as &#39;shop&#39;" in done.text
    assert f"kept {MALFORMED}: its message carried no user_id" in done.text
    # The evidence went through the engine this time, and the dispute shows it.
    evidence = admin.get("/api/v1/disputes/d2").json()["evidence"]
    assert [item["text"] for item in evidence] == ["all files were delivered"]
    remaining = admin.get("/api/v1/dead-letters").json()["dead_letters"]
    assert [item["dead_letter_id"] for item in remaining] == [MALFORMED]
    trail = [
        (entry["operator"], entry["action"], entry["subject"], entry["details"].get("event_id"))
        for entry in admin.get("/api/v1/audit").json()["entries"]
    ]
    assert ("ada", "dead_letter.retried", f"dead_letter:{UNAUTHORIZED}", "e20") in trail
    assert ("ada", "dead_letter.kept", f"dead_letter:{MALFORMED}", None) in trail


def test_a_purge_needs_the_token_and_the_confirmation_and_is_audited(app: FastAPI) -> None:
    admin, token = signed_in(app, "ada")
    no_token = admin.post("/dead-letters/purge", data={"ids": [MALFORMED], "confirm": "yes"})
    assert no_token.status_code == 403
    stale = admin.post(
        "/api/v1/dead-letters/purge",
        json={"ids": [MALFORMED], "confirm": True},
        headers={"X-CSRF-Token": "stale"},
    )
    assert stale.status_code == 403
    unconfirmed = admin.post(
        "/api/v1/dead-letters/purge", json={"ids": [MALFORMED]}, headers={"X-CSRF-Token": token}
    )
    assert unconfirmed.status_code == 400
    missing = admin.post(
        "/api/v1/dead-letters/purge",
        json={"ids": [MALFORMED, 999], "confirm": True},
        headers={"X-CSRF-Token": token},
    )
    assert missing.status_code == 404
    assert admin.get("/api/v1/dead-letters").json()["total"] == 2
    purged = admin.post(
        "/api/v1/dead-letters/purge",
        json={"ids": [MALFORMED], "confirm": True},
        headers={"X-CSRF-Token": token},
    )
    assert purged.json() == {"purged": [MALFORMED]}
    assert admin.get(f"/api/v1/dead-letters/{MALFORMED}").status_code == 404
    page = admin.get(f"/dead-letters/{UNAUTHORIZED}")
    assert page.status_code == 200 and "Nothing recorded." in page.text
    entries = admin.get("/api/v1/audit").json()["entries"]
    assert [(e["operator"], e["action"], e["subject"]) for e in entries[:1]] == [
        ("ada", "dead_letter.purged", f"dead_letter:{MALFORMED}")
    ]


def test_an_admin_token_retries_without_csrf_and_the_audit_names_its_owner(
    app: FastAPI, pg_engine: Engine
) -> None:
    """The API's bearer tokens reach the dead letters as the pages' session does; another
    role's token is refused before anything is looked up."""
    with pg_engine.begin() as conn:
        _, admin = create_token(conn, "bo-admin", Role.ADMIN, at=NOW)
        _, finance = create_token(conn, "bo-finance", Role.FINANCE, at=NOW)
    client = TestClient(app)
    choice = {"ids": [UNAUTHORIZED], "confirm": True}
    refused = client.post(
        "/api/v1/dead-letters/retry", json=choice, headers={"Authorization": f"Bearer {finance}"}
    )
    assert refused.status_code == 403
    as_admin = {"Authorization": f"Bearer {admin}"}
    done = client.post("/api/v1/dead-letters/retry", json=choice, headers=as_admin)
    assert done.status_code == 200, done.text
    assert done.json() == {
        "letters": [
            {"dead_letter_id": UNAUTHORIZED, "retried": True, "detail": "submitted again as 'shop'"}
        ]
    }
    entries = client.get("/api/v1/audit", headers=as_admin).json()["entries"]
    assert (entries[0]["operator"], entries[0]["action"]) == ("bo-admin", "dead_letter.retried")
