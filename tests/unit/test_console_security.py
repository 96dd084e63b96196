"""The console's identities, roles, CSRF, throttling and four eyes, without a web server.

SQLite is the store here (the embedded default); the same code runs on PostgreSQL in
tests/integration/test_console_app.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from console import audit
from console.accounts import Operator, add_operator, authenticate
from console.decisions import DecisionDesk, build_envelope, fit_to_contract
from console.errors import (
    BadCsrfToken,
    Conflict,
    Forbidden,
    NotSignedIn,
    OperatorMissing,
    Throttled,
)
from console.oidc import role_from_claims
from console.roles import GRANTS, Permission, Role, can, require
from console.security import LOCAL, check_csrf, current_operator, sign_in
from console.tables import decision_proposals, operators
from messages import parse_event
from policy.config import load_policies
from workers.unit_of_work import EventProcessor

AT = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def test_passwords_are_stored_as_argon2id_hashes(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        add_operator(conn, "alice", Role.DISPUTE_TEAM, PASSWORD, at=AT)
        stored = conn.execute(select(operators.c.password_hash)).scalar_one()
        assert stored.startswith("$argon2id$")
        assert PASSWORD not in stored
        assert authenticate(conn, "alice", PASSWORD, at=AT) == Operator("alice", Role.DISPUTE_TEAM)
        assert authenticate(conn, "alice", "wrong password!!", at=AT) is None
        assert authenticate(conn, "nobody", PASSWORD, at=AT) is None


def test_a_short_password_or_a_name_with_spaces_is_refused(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        with pytest.raises(ValueError, match="12 characters"):
            add_operator(conn, "alice", Role.SUPPORT, "short", at=AT)
        with pytest.raises(ValueError, match="without spaces"):
            add_operator(conn, "al ice", Role.SUPPORT, PASSWORD, at=AT)
        add_operator(conn, "alice", Role.SUPPORT, PASSWORD, at=AT)
        with pytest.raises(Conflict):
            add_operator(conn, "alice", Role.ADMIN, PASSWORD, at=AT)


def test_five_failures_lock_the_name_for_fifteen_minutes_even_for_the_right_password(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.begin() as conn:
        add_operator(conn, "alice", Role.SUPPORT, PASSWORD, at=AT)
        for minute in range(5):
            at = AT + timedelta(minutes=minute)
            assert authenticate(conn, "alice", f"guess number {minute}", at=at) is None
        with pytest.raises(Throttled):
            authenticate(conn, "alice", PASSWORD, at=AT + timedelta(minutes=5))
        # Another name is not locked by alice's failures.
        assert authenticate(conn, "bob", "anything at all", at=AT) is None
        with pytest.raises(Throttled):
            authenticate(conn, "alice", PASSWORD, at=AT + timedelta(minutes=14, seconds=59))
        # Once the first failure leaves the 15-minute window, four remain: the name is open.
        later = AT + timedelta(minutes=15, seconds=1)
        assert authenticate(conn, "alice", PASSWORD, at=later) == Operator("alice", Role.SUPPORT)


ACTIONS = (Permission.DECIDE_DISPUTES, Permission.DECIDE_REFUNDS)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_has_exactly_its_grants(role: Role) -> None:
    expected = {
        Role.SUPPORT: {"read_disputes", "read_support", "decide_refunds", "read_money"},
        Role.DISPUTE_TEAM: {"read_disputes", "decide_disputes", "read_money"},
        Role.FINANCE: {"read_disputes", "read_support", "read_money", "read_audit"},
        Role.ADMIN: {
            "read_disputes",
            "read_support",
            "read_money",
            "read_audit",
            "manage_dead_letters",
        },
    }[role]
    assert {permission.value for permission in GRANTS[role]} == expected
    for permission in Permission:
        if permission.value in expected:
            require(role, permission)
        else:
            with pytest.raises(Forbidden):
                require(role, permission)


def test_finance_is_read_only() -> None:
    assert not any(can(Role.FINANCE, action) for action in ACTIONS)


def test_csrf_token_must_match_the_session() -> None:
    session: dict[str, Any] = {}
    with pytest.raises(BadCsrfToken):
        check_csrf(session, "anything")
    sign_in(session, Operator("alice", Role.SUPPORT), LOCAL)
    token = session["csrf"]
    check_csrf(session, token)
    for wrong in (None, "", token[:-1], token + "x"):
        with pytest.raises(BadCsrfToken):
            check_csrf(session, wrong)


def test_a_new_sign_in_replaces_the_session_and_its_token() -> None:
    session: dict[str, Any] = {"csrf": "planted", "operator": "mallory"}
    sign_in(session, Operator("alice", Role.SUPPORT), LOCAL)
    assert session["operator"] == "alice"
    assert session["csrf"] != "planted"


def test_an_idle_session_signs_out(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        add_operator(conn, "alice", Role.SUPPORT, PASSWORD, at=AT)
    session: dict[str, Any] = {}
    sign_in(session, Operator("alice", Role.SUPPORT), LOCAL)
    start = float(session["seen"])
    seen = current_operator(session, sqlite_engine, idle_seconds=1800, now=start + 1700)
    assert seen == Operator("alice", Role.SUPPORT)
    # Activity moved the idle clock on; 31 minutes of silence after it ends the session.
    with pytest.raises(NotSignedIn, match="idle"):
        current_operator(session, sqlite_engine, idle_seconds=1800, now=start + 1700 + 1860)
    assert session == {}


def test_a_deleted_local_account_loses_its_session(sqlite_engine: Engine) -> None:
    session: dict[str, Any] = {}
    sign_in(session, Operator("ghost", Role.ADMIN), LOCAL)
    with pytest.raises(NotSignedIn, match="no longer exists"):
        current_operator(session, sqlite_engine, idle_seconds=60, now=float(session["seen"]))


def test_oidc_claims_map_to_the_first_configured_role() -> None:
    role_map = {"disputes": "dispute_team", "finance": "finance"}
    assert role_from_claims({"groups": ["x", "finance"]}, "groups", role_map) == Role.FINANCE
    assert role_from_claims({"groups": "disputes"}, "groups", role_map) == Role.DISPUTE_TEAM
    assert role_from_claims({"groups": ["x"]}, "groups", role_map) is None
    assert role_from_claims({}, "groups", role_map) is None


# Decisions (OP-1, OP-2), on the embedded store


def _event(event_id: str, type_: str, at: str, **data: Any) -> str:
    return json.dumps(
        {"event_id": event_id, "type": type_, "occurred_at": at, "schema_version": 1, "data": data}
    )


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
]  # fmt: skip

ALICE = Operator("alice", Role.DISPUTE_TEAM)
BOB = Operator("bob", Role.DISPUTE_TEAM)


@pytest.fixture
def desk(sqlite_engine: Engine) -> tuple[DecisionDesk, list[dict[str, object]]]:
    policies = load_policies()
    apply = EventProcessor(sqlite_engine, policies)
    for line in STORY:
        apply(line)
    sent: list[dict[str, object]] = []

    def publish(envelope: dict[str, object]) -> None:
        sent.append(envelope)
        apply(envelope)

    return (
        DecisionDesk(
            sqlite_engine, policies, publish, four_eyes_above_minor=50_000, clock=lambda: AT
        ),
        sent,
    )


def test_op1_a_decision_without_an_operator_is_refused(
    desk: tuple[DecisionDesk, list[dict[str, object]]],
) -> None:
    """OP-1: the console refuses a decision that names no operator, and names the one that
    decides in `decided_by` (where the installed message contract has the field)."""
    decisions, sent = desk
    with pytest.raises(OperatorMissing):
        decisions.decide_dispute(None, "d1", "partial_refund", 20000, reason="half done")
    with pytest.raises(OperatorMissing):
        decisions.decide_dispute(
            Operator("", Role.DISPUTE_TEAM), "d1", "partial_refund", 20000, reason="half done"
        )
    assert sent == []
    done = decisions.decide_dispute(ALICE, "d1", "partial_refund", 20000, reason="half done")
    assert done.status == "published"
    (envelope,) = sent
    data = envelope["data"]
    assert isinstance(data, dict)
    assert data["dispute_id"] == "d1" and data["refund_amount_minor"] == 20000
    assert data == fit_to_contract(
        "dispute.resolved", {**data, "contract_id": "c1", "decided_by": "alice"}
    )
    with decisions.engine.connect() as conn:
        (entry,) = audit.entries(conn)
    assert (entry.operator, entry.action, entry.subject) == ("alice", "decision.published", "d1")


def test_op1_only_the_dispute_team_decides_disputes(
    desk: tuple[DecisionDesk, list[dict[str, object]]],
) -> None:
    """OP-1 with roles: support and finance cannot resolve a dispute."""
    decisions, sent = desk
    for role in (Role.SUPPORT, Role.FINANCE, Role.ADMIN):
        with pytest.raises(Forbidden):
            decisions.decide_dispute(Operator("x", role), "d1", "full_refund", None, reason="r")
    assert sent == []


def test_op2_a_large_decision_waits_for_a_second_operator(
    desk: tuple[DecisionDesk, list[dict[str, object]]],
) -> None:
    """OP-2: a full refund of 500.00 pays the client 520.00 (fee reversed), above the
    threshold: it becomes a proposal; the proposer cannot approve it; another operator does,
    and only then is the event published."""
    decisions, sent = desk
    proposed = decisions.decide_dispute(ALICE, "d1", "full_refund", None, reason="no delivery")
    assert proposed.status == "proposed"
    assert proposed.preview is not None and proposed.preview.moves_minor == 52000
    assert sent == []
    assert proposed.proposal_id is not None
    with pytest.raises(Forbidden, match="cannot approve"):
        decisions.approve(ALICE, proposed.proposal_id)
    with pytest.raises(Forbidden):
        decisions.approve(Operator("sam", Role.SUPPORT), proposed.proposal_id)
    assert sent == []
    approved = decisions.approve(BOB, proposed.proposal_id)
    assert approved.status == "published"
    (envelope,) = sent
    assert envelope["event_id"] == f"console:{proposed.proposal_id}"
    assert parse_event(envelope).type == "dispute.resolved"
    with pytest.raises(Conflict, match="no longer pending"):
        decisions.approve(BOB, proposed.proposal_id)
    with decisions.engine.connect() as conn:
        actions = [(entry.operator, entry.action) for entry in reversed(audit.entries(conn))]
        row = conn.execute(select(decision_proposals)).one()
    assert actions == [("alice", "decision.proposed"), ("bob", "decision.approved")]
    assert (row.status, row.proposed_by, row.reviewed_by) == ("approved", "alice", "bob")


def test_op2_a_decision_at_the_threshold_goes_out_at_once(
    desk: tuple[DecisionDesk, list[dict[str, object]]],
) -> None:
    """OP-2 says "more than": moving exactly the threshold needs no second operator."""
    decisions, sent = desk
    preview = decisions.preview("d1", "partial_refund", 20000)
    # 200.00 refunded (+8.00 fee) to the client, 276.00 released to the creator.
    assert (preview.client_receives_minor, preview.released_to_creator_minor) == (20800, 27600)
    exact = DecisionDesk(
        decisions.engine,
        decisions.policies,
        decisions.publisher,
        four_eyes_above_minor=27600,
        clock=lambda: AT,
    )
    assert exact.decide_dispute(ALICE, "d1", "partial_refund", 20000, reason="r").status == (
        "published"
    )
    assert len(sent) == 1


def test_op2_a_rejected_proposal_is_never_published(
    desk: tuple[DecisionDesk, list[dict[str, object]]],
) -> None:
    """OP-2: the reviewer may refuse; nothing goes out and the proposal is closed."""
    decisions, sent = desk
    proposed = decisions.decide_dispute(ALICE, "d1", "full_refund", None, reason="no delivery")
    assert proposed.proposal_id is not None
    assert decisions.reject(BOB, proposed.proposal_id, reason="partial is fairer").status == (
        "rejected"
    )
    assert sent == []
    with pytest.raises(Conflict):
        decisions.approve(BOB, proposed.proposal_id)


def test_a_decision_the_engine_would_refuse_is_refused_before_publishing(
    desk: tuple[DecisionDesk, list[dict[str, object]]],
) -> None:
    decisions, sent = desk
    with pytest.raises(Conflict, match="exceeds"):
        decisions.decide_dispute(ALICE, "d1", "partial_refund", 60000, reason="too much")
    assert decisions.preview("d1", "partial_refund", 60000).refused is not None
    assert sent == []


def test_envelopes_follow_the_installed_message_contract() -> None:
    body = build_envelope(
        "refund.declined",
        {"request_id": "r1", "contract_id": "c1", "declined_by": "support", "decided_by": "sam"},
        event_id="console:x",
        at=AT,
    )
    assert body["occurred_at"] == "2026-03-12T12:00:00Z"
    assert parse_event(body).type == "refund.declined"
