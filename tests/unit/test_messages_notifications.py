"""The outbound notifications of MESSAGES.md: each one builds, survives a trip through JSON,
and is refused when its data is wrong."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any, get_args

import pytest

from messages import MalformedMessage, Notification, NotificationData, parse_notification
from messages.notifications import (
    NOTIFICATION_DATA,
    NOTIFICATION_TYPE_OF,
    NotificationType,
    ReasonCode,
    RefundCompleted,
    WithdrawalScheduled,
)

AT = datetime(2026, 3, 9, 12, 30, tzinfo=UTC)

VALID_DATA: dict[str, dict[str, Any]] = {
    "refund.requested": {
        "request_id": "r1",
        "contract_id": "c1",
        "target_id": "m1",
        "amount_minor": 20000,
        "currency": "USD",
        "reason": "the logo was never delivered",
    },
    "refund.completed": {
        "contract_id": "c1",
        "target_id": "m1",
        "request_id": "r1",
        "cause": "approved",
        "currency": "USD",
        "refund_minor": 20000,
        "client_fee_reversed_minor": 1000,
        "creator_fee_reversed_minor": 2000,
        "processor_fee_deducted_minor": 592,
        "credited_to_client_minor": 20408,
        "clawed_back_from_creator_minor": 18000,
    },
    "refund.rejected": {
        "event_id": "evt-9",
        "contract_id": "c1",
        "target_id": "m1",
        "request_id": None,
        "reason": "window_expired",
    },
    "refund.declined": {"request_id": "r1", "contract_id": "c1", "declined_by": "creator"},
    "refund.escalated": {"request_id": "r1", "contract_id": "c1"},
    "refund.fee_deduction_notice": {
        "contract_id": "c1",
        "target_id": "m1",
        "payment_id": "p1",
        "currency": "USD",
        "refund_minor": 20000,
        "processor_fee_deducted_minor": 592,
    },
    "dispute.opened": {
        "dispute_id": "d1",
        "contract_id": "c1",
        "target_id": "m1",
        "reason": "work does not match the brief",
    },
    "dispute.resolved": {
        "dispute_id": "d1",
        "contract_id": "c1",
        "target_id": "m1",
        "outcome": "partial_refund",
        "currency": "USD",
        "refund_minor": 10000,
        "released_minor": 40000,
    },
    "dispute.rejected": {
        "event_id": "evt-12",
        "dispute_id": "d1",
        "contract_id": None,
        "target_id": None,
        "reason": "unknown_subject",
    },
    "dispute.overdue": {
        "dispute_id": "d1",
        "contract_id": "c1",
        "opened_at": "2026-03-02T10:00:00Z",
        "sla_days": 5,
    },
    "dispute.evidence_added": {
        "evidence_id": "ev1",
        "dispute_id": "d1",
        "contract_id": "c1",
        "party": "creator",
        "text": "",
        "attachments": [
            {
                "name": "draft-3.png",
                "media_type": "image/png",
                "size_bytes": 1024,
                "sha256": "0" * 64,
                "url": "https://files.example.com/ev1/draft-3.png",
            }
        ],
    },
    "milestone.finalized": {"contract_id": "c1", "milestone_id": "m1"},
    "escrow.frozen": {
        "chargeback_id": "cb1",
        "payment_id": "p1",
        "contract_id": "c1",
        "milestone_ids": ["m1", "m2"],
    },
    "escrow.unfrozen": {
        "chargeback_id": "cb1",
        "payment_id": "p1",
        "contract_id": "c1",
        "milestone_ids": ["m1"],
    },
    "chargeback.resolved": {
        "chargeback_id": "cb1",
        "payment_id": "p1",
        "outcome": "client_won",
        "currency": "USD",
        "amount_minor": 50000,
        "issuer_fee_minor": 1500,
        "passed_to_client_minor": 0,
    },
    "account.flagged": {
        "user_id": "u1",
        "reason": "chargeback_on_accepted_work",
        "chargeback_id": "cb1",
    },
    "addon.refunded": {"addon_id": "a1", "user_id": "u2", "currency": "EUR", "amount_minor": 999},
    "addon.refund_rejected": {"event_id": "evt-20", "addon_id": "a1", "reason": "addon_started"},
    "points.clawed_back": {"user_id": "u2", "milestone_id": "m1", "points": 150},
    "withdrawal.scheduled": {
        "withdrawal_id": "w1",
        "user_id": "u2",
        "currency": "USD",
        "amount_minor": 30000,
        "earliest_on": "2026-03-11",
        "latest_on": "2026-03-16",
    },
    "reviews.hidden": {"contract_id": "c1", "currency": "USD", "net_value_minor": 0},
    "review_window.closed": {"contract_id": "c1", "closed_at": "2026-04-01T00:00:00Z"},
    "processor_fee.passed_through": {
        "payment_id": "p1",
        "contract_id": "c1",
        "currency": "USD",
        "processor_fee_refunded_minor": 1480,
        "passed_to_client_minor": 1480,
    },
    "event.rejected": {
        "event_id": "evt-30",
        "event_type": "withdrawal.requested",
        "subject_id": "w1",
        "reason": "insufficient_balance",
    },
}

# One defect per type, with the dotted path MalformedMessage must name.
INVALID_DATA: dict[str, tuple[dict[str, Any], str]] = {
    "refund.requested": ({"amount_minor": -1}, "data.amount_minor"),
    "refund.completed": ({"cause": "goodwill"}, "data.cause"),
    "refund.rejected": ({"reason": "too_late"}, "data.reason"),
    "refund.declined": ({"declined_by": "client"}, "data.declined_by"),
    "refund.escalated": ({"contract_id": ""}, "data.contract_id"),
    "refund.fee_deduction_notice": ({"refund_minor": 1.0}, "data.refund_minor"),
    "dispute.opened": ({"reason": 3}, "data.reason"),
    "dispute.resolved": ({"outcome": "split"}, "data.outcome"),
    "dispute.rejected": ({"reason": None}, "data.reason"),
    "dispute.overdue": ({"opened_at": "2026-03-02T10:00:00"}, "data.opened_at"),
    "dispute.evidence_added": ({"attachments": None}, "data.attachments"),
    "milestone.finalized": ({"milestone_id": "m" * 129}, "data.milestone_id"),
    "escrow.frozen": ({"milestone_ids": ["m1", ""]}, "data.milestone_ids.1"),
    "escrow.unfrozen": ({"milestone_ids": "m1"}, "data.milestone_ids"),
    "chargeback.resolved": ({"outcome": "pending"}, "data.outcome"),
    "account.flagged": ({"reason": "suspicious"}, "data.reason"),
    "addon.refunded": ({"currency": "EURO"}, "data.currency"),
    "addon.refund_rejected": ({"reason": "frozen_solid"}, "data.reason"),
    "points.clawed_back": ({"points": True}, "data.points"),
    "withdrawal.scheduled": ({"earliest_on": "11/03/2026"}, "data.earliest_on"),
    "reviews.hidden": ({"net_value_minor": 2**63}, "data.net_value_minor"),
    "review_window.closed": ({"closed_at": 1775001600}, "data.closed_at"),
    "processor_fee.passed_through": ({"payment_id": None}, "data.payment_id"),
    "event.rejected": ({"surprise": 1}, "data.surprise"),
}

MESSAGES_MD_TYPES = {
    "refund.requested",
    "refund.completed",
    "refund.rejected",
    "refund.declined",
    "refund.escalated",
    "refund.fee_deduction_notice",
    "dispute.opened",
    "dispute.resolved",
    "dispute.rejected",
    "dispute.overdue",
    "dispute.evidence_added",
    "milestone.finalized",
    "escrow.frozen",
    "escrow.unfrozen",
    "chargeback.resolved",
    "account.flagged",
    "addon.refunded",
    "addon.refund_rejected",
    "points.clawed_back",
    "withdrawal.scheduled",
    "reviews.hidden",
    "review_window.closed",
    "processor_fee.passed_through",
    "event.rejected",
}

MESSAGES_MD_REASONS = {
    "window_expired",
    "needs_support",
    "exceeds_contract_total",
    "exceeds_refundable",
    "already_released",
    "not_paid",
    "frozen",
    "addon_started",
    "insufficient_balance",
    "unknown_subject",
    "invalid_state",
}


def build(type_: str) -> Notification:
    data = NOTIFICATION_DATA[type_].model_validate(VALID_DATA[type_])
    return Notification.build(
        notification_id=f"ntf-{type_}-1",
        occurred_at=AT,
        recipients=["user:u1", "dispute_team"],
        data=data,
    )


def body(type_: str) -> dict[str, Any]:
    return {
        "notification_id": "ntf-1",
        "type": type_,
        "occurred_at": "2026-03-09T12:30:00Z",
        "recipients": ["user:u1"],
        "data": dict(VALID_DATA[type_]),
    }


def refused(raw: object) -> MalformedMessage:
    with pytest.raises(MalformedMessage) as caught:
        parse_notification(raw)
    return caught.value


def test_the_models_cover_exactly_the_types_and_reasons_of_messages_md() -> None:
    assert set(NOTIFICATION_DATA) == MESSAGES_MD_TYPES
    assert set(get_args(NotificationType)) == MESSAGES_MD_TYPES
    assert set(NOTIFICATION_TYPE_OF.values()) == MESSAGES_MD_TYPES
    assert set(get_args(ReasonCode)) == MESSAGES_MD_REASONS
    assert set(VALID_DATA) == MESSAGES_MD_TYPES
    assert set(INVALID_DATA) == MESSAGES_MD_TYPES


@pytest.mark.parametrize("type_", sorted(MESSAGES_MD_TYPES))
def test_each_type_builds_and_round_trips_through_json(type_: str) -> None:
    notification = build(type_)

    wire = json.dumps(notification.model_dump(mode="json")).encode()
    read = parse_notification(wire)

    assert notification.type == type_
    assert read == notification
    assert type(read.data) is NOTIFICATION_DATA[type_]
    assert read.model_dump(mode="json")["data"] == VALID_DATA[type_]


@pytest.mark.parametrize("type_", sorted(MESSAGES_MD_TYPES))
def test_invalid_data_of_each_type_names_its_field(type_: str) -> None:
    raw = body(type_)
    changes, field = INVALID_DATA[type_]
    raw["data"].update(changes)

    assert refused(raw).fields == [field]


def test_build_refuses_data_that_is_not_a_notification_model() -> None:
    with pytest.raises(KeyError):
        Notification.build(
            notification_id="n1",
            occurred_at=AT,
            recipients=["user:u1"],
            data=NotificationData(),
        )


def test_the_data_model_decides_the_type() -> None:
    data = WithdrawalScheduled.model_validate(VALID_DATA["withdrawal.scheduled"])

    notification = Notification.build(
        notification_id="n1", occurred_at=AT, recipients=["user:u2"], data=data
    )

    assert notification.type == "withdrawal.scheduled"
    assert isinstance(notification.data, WithdrawalScheduled)
    assert notification.data.earliest_on == date(2026, 3, 11)


def test_data_of_another_type_is_refused() -> None:
    raw = body("refund.completed")
    raw["type"] = "refund.declined"

    assert "data.request_id" not in refused(raw).fields
    assert "data.declined_by" in refused(raw).fields


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("notification_id", ""),
        ("occurred_at", "2026-03-09T12:30:00"),
        ("recipients", []),
        ("recipients", ["u1"]),
        ("recipients", "user:u1"),
    ],
)
def test_a_bad_envelope_field_is_named(field: str, value: object) -> None:
    raw = body("milestone.finalized")
    raw[field] = value

    fields = refused(raw).fields

    assert fields and all(f == field or f.startswith(f"{field}.") for f in fields)


@pytest.mark.parametrize("type_", ["refund.approved", "", "REFUND.COMPLETED"])
def test_an_unknown_notification_type_is_refused(type_: str) -> None:
    raw = body("refund.completed")
    raw["type"] = type_

    assert refused(raw).fields == ["type"]


def test_a_missing_type_is_refused() -> None:
    raw = body("refund.completed")
    del raw["type"]

    assert refused(raw).fields == ["type"]


def test_an_extra_envelope_field_is_refused() -> None:
    raw = body("refund.completed")
    raw["priority"] = "high"

    assert refused(raw).fields == ["priority"]


@pytest.mark.parametrize("raw", [b"{", b"[]", b"null"])
def test_a_body_that_is_not_a_json_object_is_refused(raw: bytes) -> None:
    assert refused(raw).fields == ["body"]


def test_one_notification_names_all_its_recipients() -> None:
    data = RefundCompleted.model_validate(VALID_DATA["refund.completed"])

    notification = Notification.build(
        notification_id="n1",
        occurred_at="2026-03-09T14:30:00+02:00",
        recipients=["user:u1", "user:u2"],
        data=data,
    )

    assert notification.recipients == ["user:u1", "user:u2"]
    assert notification.occurred_at == AT


def test_the_notification_type_literal_and_the_data_models_name_the_same_types() -> None:
    """The `type` a notification may carry and the models of its `data` are one list."""
    from typing import get_args

    from messages.notifications import NOTIFICATION_DATA, NotificationType

    assert sorted(get_args(NotificationType)) == sorted(NOTIFICATION_DATA)
