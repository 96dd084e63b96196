"""Decisions name their contract, who decided is kept, and a party's evidence reaches the
dispute team (MESSAGES.md: refund.declined, refund.escalated, dispute.resolved,
dispute.evidence_added)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from policy.errors import UnknownSubject
from policy.tables import dispute_evidence
from tests.integration.test_fixed_flows import DAY, T0, Driver

EVIDENCE: dict[str, Any] = {
    "evidence_id": "ev1",
    "dispute_id": "r1",
    "contract_id": "c1",
    "party": "client",
    "text": "The brief asked for a vector logo.\nThe delivery is a JPEG.",
    "attachments": [
        {
            "name": "brief.pdf",
            "media_type": "application/pdf",
            "size_bytes": 48213,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "url": "https://files.example.com/ev1/brief.pdf",
        }
    ],
}


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


def two_contracts(engine: Driver, policy: str = "cadcrowd") -> None:
    """c1 with milestone m1 and c2 with m2, both funded; under `cadcrowd` a request waits for
    the creator's decision (CC-2)."""
    engine.open(policy)
    engine.open(policy, contract_id="c2")
    engine.fund()
    engine.fund("m2", contract_id="c2")


def disputed(engine: Driver) -> None:
    """SC-3: a request on started work opens dispute r1 on c1."""
    two_contracts(engine, "spectrum")
    engine.start_work(T0 + DAY)
    assert engine.request("r1", 50000, T0 + 2 * DAY).status == "applied"


def test_a_decline_naming_another_contract_is_refused_and_changes_nothing(
    engine: Driver,
) -> None:
    two_contracts(engine)
    engine.request("r1", 20000, T0 + DAY)
    assert engine.refund_request("r1").status == "pending"

    result = engine.send(
        "refund.declined", T0 + 2 * DAY, request_id="r1", contract_id="c2", declined_by="creator"
    )

    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert engine.refund_request("r1").status == "pending"
    assert engine.notifications("refund.declined") == []
    (rejected,) = engine.notifications("refund.rejected")
    assert rejected["recipients"] == ["support"]
    assert rejected["data"]["contract_id"] == "c2"


def test_a_decline_keeps_the_operator_who_decided(engine: Driver) -> None:
    two_contracts(engine)
    engine.request("r1", 20000, T0 + DAY)

    result = engine.send(
        "refund.declined",
        T0 + 2 * DAY,
        request_id="r1",
        contract_id="c1",
        declined_by="support",
        decided_by="op-7",
    )

    assert result.status == "applied"
    request = engine.refund_request("r1")
    assert (request.status, request.decided_by) == ("declined", "op-7")


def test_an_approval_keeps_the_operator_who_decided(engine: Driver) -> None:
    two_contracts(engine)
    engine.request("r1", 20000, T0 + DAY)

    result = engine.send(
        "refund.approved",
        T0 + 2 * DAY,
        contract_id="c1",
        target_id="m1",
        amount_minor=20000,
        approved_by="support",
        request_id="r1",
        decided_by="op-9",
    )

    assert result.status == "applied"
    assert engine.refund_request("r1").decided_by == "op-9"


def test_an_escalation_naming_another_contract_is_refused(engine: Driver) -> None:
    two_contracts(engine)
    engine.request("r1", 20000, T0 + DAY)

    result = engine.send("refund.escalated", T0 + 2 * DAY, request_id="r1", contract_id="c2")

    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert engine.refund_request("r1").status == "pending"
    (rejected,) = engine.notifications("refund.rejected")
    assert rejected["recipients"] == ["support"]


def test_a_decision_on_an_unknown_request_still_waits_for_it(engine: Driver) -> None:
    two_contracts(engine)

    with pytest.raises(UnknownSubject):
        engine.send(
            "refund.declined", T0 + DAY, request_id="r9", contract_id="c1", declined_by="creator"
        )


def test_a_dispute_decision_naming_another_contract_is_refused_and_moves_nothing(
    engine: Driver,
) -> None:
    disputed(engine)
    before = engine.balances("user:ana", "user:ben", "escrow:m1", "escrow:m2")

    result = engine.send(
        "dispute.resolved", T0 + 3 * DAY, dispute_id="r1", contract_id="c2", outcome="full_refund"
    )

    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert engine.dispute("r1").status == "open"
    assert engine.balances("user:ana", "user:ben", "escrow:m1", "escrow:m2") == before
    (rejected,) = engine.notifications("dispute.rejected")
    assert rejected["recipients"] == ["dispute_team"]
    assert engine.audit_ok()


def test_a_dispute_decision_keeps_the_operator_who_decided(engine: Driver) -> None:
    disputed(engine)

    result = engine.send(
        "dispute.resolved",
        T0 + 3 * DAY,
        dispute_id="r1",
        contract_id="c1",
        outcome="release_to_creator",
        decided_by="op-3",
    )

    assert result.status == "applied"
    dispute = engine.dispute("r1")
    assert (dispute.status, dispute.decided_by) == ("resolved", "op-3")
    # SC-3: the request that opened the dispute is decided with it, by the same operator.
    assert engine.refund_request("r1").decided_by == "op-3"


def test_evidence_is_stored_and_sent_to_the_dispute_team(engine: Driver) -> None:
    disputed(engine)

    result = engine.send("dispute.evidence_added", T0 + 3 * DAY, event_id="evt-ev1", **EVIDENCE)

    assert result.status == "applied"
    with engine.engine.begin() as conn:
        (row,) = conn.execute(select(dispute_evidence)).mappings()
    assert dict(row) == {
        "evidence_id": "ev1",
        "dispute_id": "r1",
        "contract_id": "c1",
        "party": "client",
        "text": EVIDENCE["text"],
        "attachments": EVIDENCE["attachments"],
        "occurred_at": T0 + 3 * DAY,
        "event_id": "evt-ev1",
    }
    (notice,) = engine.notifications("dispute.evidence_added")
    assert notice["recipients"] == ["dispute_team"]
    assert notice["data"] == EVIDENCE
    assert engine.dispute("r1").status == "open"


def test_evidence_for_an_unknown_dispute_waits_for_it(engine: Driver) -> None:
    two_contracts(engine)

    with pytest.raises(UnknownSubject):
        engine.send("dispute.evidence_added", T0 + DAY, **EVIDENCE)


def test_evidence_naming_another_contract_is_refused(engine: Driver) -> None:
    disputed(engine)

    result = engine.send(
        "dispute.evidence_added", T0 + 3 * DAY, **{**EVIDENCE, "contract_id": "c2"}
    )

    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert engine.notifications("dispute.evidence_added") == []
    with engine.engine.begin() as conn:
        assert list(conn.execute(select(dispute_evidence))) == []


def test_an_evidence_id_is_used_once(engine: Driver) -> None:
    disputed(engine)
    engine.send("dispute.evidence_added", T0 + 3 * DAY, **EVIDENCE)

    again = engine.send("dispute.evidence_added", T0 + 4 * DAY, **{**EVIDENCE, "text": "more"})

    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert len(engine.notifications("dispute.evidence_added")) == 1
