"""A console on a real store, for the console's integration and browser tests: a story with
two open disputes, operators of every role, and a client that signs in."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import argon2
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.testclient import TestClient

import console.accounts
from console.accounts import add_operator
from console.app import create_app
from console.publishing import embedded_publisher
from console.roles import Role
from console.settings import ConsoleSettings
from policy.config import load_policies
from workers.intake.producers import Producers
from workers.intake.service import Delivery, Intake
from workers.unit_of_work import EventProcessor

NOW = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
"""A week after the disputes opened: both are past their 5-day SLA (SC-14)."""
PASSWORD = "correct horse battery"
SECRET = "test-secret-key-of-at-least-32-characters"


def _event(event_id: str, type_: str, at: str, **data: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": type_,
        "occurred_at": at,
        "schema_version": 1,
        "data": data,
    }


STORY = [
    _event(
        "e1", "contract.opened", "2026-03-02T09:00:00Z", contract_id="c1", kind="fixed",
        client_id="ana", creator_id="ben", currency="USD", policy="spectrum",
    ),
    _event(
        "e2", "milestone.funded", "2026-03-02T10:00:00Z", contract_id="c1", milestone_id="m1",
        payment_id="p1", amount_minor=50000, processor_fee_minor=1480,
    ),
    _event(
        "e3", "work.started", "2026-03-03T08:00:00Z", contract_id="c1", milestone_id="m1",
        evidence="delivery",
    ),
    _event(
        "e4", "refund.requested", "2026-03-05T11:00:00Z", request_id="d1", contract_id="c1",
        target_id="m1", amount_minor=50000, reason="late and incomplete",
    ),
    _event(
        "e5", "contract.opened", "2026-03-02T09:30:00Z", contract_id="c2", kind="fixed",
        client_id="cat", creator_id="dan", currency="USD", policy="spectrum",
    ),
    _event(
        "e6", "milestone.funded", "2026-03-02T10:30:00Z", contract_id="c2", milestone_id="m2",
        payment_id="p2", amount_minor=90000, processor_fee_minor=2640,
    ),
    _event(
        "e7", "work.started", "2026-03-03T09:00:00Z", contract_id="c2", milestone_id="m2",
        evidence="upload",
    ),
    _event(
        "e8", "dispute.opened", "2026-03-06T11:00:00Z", dispute_id="d2", contract_id="c2",
        target_id="m2", reason="<b>not</b> what was ordered",
    ),
]  # fmt: skip

OPERATORS = {
    "alice": Role.DISPUTE_TEAM,
    "bob": Role.DISPUTE_TEAM,
    "sam": Role.SUPPORT,
    "fran": Role.FINANCE,
    "ada": Role.ADMIN,
}


CHEAP_HASHER = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
"""For the tests' accounts (patched in by their fixtures): the production parameters cost
0.3 s a hash on a CI core; tests/unit/test_console_security.py checks those."""


def seed(engine: Engine) -> None:
    apply = EventProcessor(engine, load_policies())
    for envelope in STORY:
        assert apply(json.dumps(envelope)).status == "applied"
    with engine.begin() as conn:
        for name, role in OPERATORS.items():
            add_operator(conn, name, role, PASSWORD, at=NOW)


def seeded_console(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The console on the story, the operators (with cheap hashes) and the dead letters."""
    monkeypatch.setattr(console.accounts, "_HASHER", CHEAP_HASHER)
    seed(engine)
    dead_letters(engine)
    return console_app(engine)


def console_app(engine: Engine, **settings: Any) -> FastAPI:
    policies = load_policies()
    return create_app(
        engine,
        policies,
        embedded_publisher(engine, policies),
        ConsoleSettings(**settings),
        secret_key=SECRET,
        clock=lambda: NOW,
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def signed_in(app: FastAPI, name: str) -> tuple[TestClient, str]:
    """A client signed in as `name`, and its session's CSRF token."""
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    answer = client.post(
        "/signin", data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/"}
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/disputes")
    assert page.status_code == 200
    return client, csrf_of(page.text)


MARKUP_BODY = '{"event_id": "<script>alert(1)</script>", "type":'
"""A body the intake refuses as malformed, with markup a page must show as text."""

EVIDENCE = _event(
    "e20", "dispute.evidence_added", "2026-03-07T09:00:00Z", evidence_id="ev20",
    dispute_id="d2", contract_id="c2", party="creator", text="all files were delivered",
    attachments=[],
)  # fmt: skip
"""Sent by a producer that may not send it: dead-lettered as unauthorized_producer."""


def dead_letters(engine: Engine) -> None:
    """Two dead letters written by the engine's own intake: 1, a malformed body with markup
    (no user_id: not retriable); 2, EVIDENCE from `shop`, which only contract events allow
    (retriable by the console's intake, which lets any producer send evidence)."""
    strict = Intake(
        engine, Producers("engine", {"shop": ("contract.*",)}), nudge=lambda _partitions: None
    )
    strict.receive([Delivery(MARKUP_BODY.encode(), None, None)])
    strict.submit(json.dumps(EVIDENCE), user_id="shop")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served_over_http(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """`app` on a real uvicorn in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port or free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
