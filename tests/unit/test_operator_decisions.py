"""`recourse decide` checks a decision before anything is read or sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from messages.inbound import DisputeOutcome, DisputeResolvedEvent
from policy.state import DisputeState
from workers.operator.decisions import (
    Decision,
    check_usage,
    envelope,
    require_broker,
    with_contract_of,
)
from workers.operator.errors import UsageProblem

NOW = datetime(2026, 3, 9, 15, 30, tzinfo=UTC)


def test_partial_refund_needs_an_amount() -> None:
    with pytest.raises(UsageProblem, match="partial_refund needs an amount; pass --amount"):
        check_usage(Decision("d1", "partial_refund", None))


@pytest.mark.parametrize("outcome", ["full_refund", "release_to_creator"])
def test_an_amount_goes_only_with_partial_refund(outcome: DisputeOutcome) -> None:
    with pytest.raises(
        UsageProblem, match=f"--amount goes only with partial_refund, not {outcome}"
    ):
        check_usage(Decision("d1", outcome, 500))


def test_an_amount_must_be_positive() -> None:
    with pytest.raises(UsageProblem, match="positive number of minor units, not 0"):
        check_usage(Decision("d1", "partial_refund", 0))


def test_the_envelope_is_a_valid_dispute_resolved_event_with_a_fresh_event_id() -> None:
    event = envelope(Decision("d1", "partial_refund", 25000, "c1"), event_id=None, now=NOW)
    assert isinstance(event, DisputeResolvedEvent)
    assert re.fullmatch(r"decide:d1:[0-9a-f-]{36}", event.event_id)
    assert event.occurred_at == NOW
    assert event.data.outcome == "partial_refund"
    assert event.data.refund_amount_minor == 25000
    again = envelope(Decision("d1", "partial_refund", 25000, "c1"), event_id=None, now=NOW)
    assert again.event_id != event.event_id


def test_a_given_event_id_is_kept_so_a_retry_is_a_duplicate() -> None:
    event = envelope(Decision("d1", "full_refund", None, "c1"), event_id="ops-42", now=NOW)
    assert event.event_id == "ops-42"
    assert event.model_dump(mode="json", exclude_none=True)["data"] == {
        "dispute_id": "d1",
        "contract_id": "c1",
        "outcome": "full_refund",
    }


def _dispute(contract_id: str) -> DisputeState:
    return DisputeState(
        dispute_id="d1",
        contract_id=contract_id,
        target_id="m1",
        reason="x",
        opened_at=NOW,
        status="open",
        resolved_at=None,
        outcome=None,
        refund_minor=0,
        released_minor=0,
        overdue_notified_at=None,
    )


def test_the_decision_names_the_contract_read_from_the_dispute() -> None:
    decision = with_contract_of(Decision("d1", "full_refund", None), _dispute("c7"))

    assert envelope(decision, event_id=None, now=NOW).data.contract_id == "c7"  # type: ignore[attr-defined]


def test_a_contract_that_is_not_the_disputes_is_refused() -> None:
    with pytest.raises(UsageProblem, match="belongs to contract 'c7'"):
        with_contract_of(Decision("d1", "full_refund", None, "c1"), _dispute("c7"))


def test_without_the_database_the_contract_must_be_given() -> None:
    with pytest.raises(UsageProblem, match="--contract"):
        with_contract_of(Decision("d1", "full_refund", None), None)

    given = with_contract_of(Decision("d1", "full_refund", None, "c1"), None)
    assert given.contract_id == "c1"


def test_an_envelope_the_contract_refuses_names_the_field() -> None:
    with pytest.raises(UsageProblem, match="event_id"):
        envelope(Decision("d1", "full_refund", None, "c1"), event_id="x" * 200, now=NOW)


def test_a_broker_url_is_required_and_must_be_amqp() -> None:
    with pytest.raises(UsageProblem, match="set BROKER_URL or pass --broker"):
        require_broker(None)
    with pytest.raises(UsageProblem, match="bad broker URL 'http://rabbit'"):
        require_broker("http://rabbit")
    assert require_broker("amqp://guest:guest@rabbit/") == "amqp://guest:guest@rabbit/"
