"""The notifications the engine emits to the `refunds.notifications` exchange.

The body is `{"notification_id", "type", "occurred_at", "recipients", "data"}`; `data` has one
model per type below. `notification_id` is stable for a cause (derived from the event that
caused it), so a consumer that sees it twice drops the second copy.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, SerializeAsAny, StrictStr

from messages.fields import (
    MESSAGE_CONFIG,
    Currency,
    EvidenceText,
    Id,
    IsoDate,
    SumMinor,
    UtcDateTime,
)
from messages.inbound import ChargebackOutcome, DisputeOutcome, EvidenceAttachment, EvidenceParty

ReasonCode = Literal[
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
]
"""Why a request was refused; the list of MESSAGES.md."""

Recipient = Annotated[
    StrictStr,
    Field(
        pattern=r"^(user:[!-~]{1,128}|dispute_team|support|finance)$",
        json_schema_extra={"not": {"pattern": r"\n"}},
    ),
]
RefundCause = Literal["automatic", "approved", "dispute", "chargeback", "cooling_off"]


class NotificationData(BaseModel):
    model_config = MESSAGE_CONFIG


class RefundRequestedNotice(NotificationData):
    request_id: Id
    contract_id: Id
    target_id: Id
    amount_minor: SumMinor
    currency: Currency
    reason: StrictStr


class RefundCompleted(NotificationData):
    """Money moved back to the client: every part of the sum, to the cent."""

    contract_id: Id
    target_id: Id
    request_id: Id | None
    cause: RefundCause
    currency: Currency
    refund_minor: SumMinor
    client_fee_reversed_minor: SumMinor
    creator_fee_reversed_minor: SumMinor
    processor_fee_deducted_minor: SumMinor
    credited_to_client_minor: SumMinor
    clawed_back_from_creator_minor: SumMinor


class RefundRejected(NotificationData):
    event_id: Id
    contract_id: Id | None
    target_id: Id | None
    request_id: Id | None
    reason: ReasonCode


class RefundDeclinedNotice(NotificationData):
    request_id: Id
    contract_id: Id
    declined_by: Literal["creator", "support"]


class RefundEscalatedNotice(NotificationData):
    request_id: Id
    contract_id: Id


class RefundFeeDeductionNotice(NotificationData):
    contract_id: Id
    target_id: Id
    payment_id: Id
    currency: Currency
    refund_minor: SumMinor
    processor_fee_deducted_minor: SumMinor


class DisputeOpenedNotice(NotificationData):
    dispute_id: Id
    contract_id: Id
    target_id: Id
    reason: StrictStr


class DisputeResolvedNotice(NotificationData):
    dispute_id: Id
    contract_id: Id
    target_id: Id
    outcome: DisputeOutcome
    currency: Currency
    refund_minor: SumMinor
    released_minor: SumMinor


class DisputeRejected(NotificationData):
    event_id: Id
    dispute_id: Id
    contract_id: Id | None
    target_id: Id | None
    reason: ReasonCode


class DisputeOverdue(NotificationData):
    dispute_id: Id
    contract_id: Id
    opened_at: UtcDateTime
    sla_days: SumMinor


class DisputeEvidenceAddedNotice(NotificationData):
    """A party added evidence to an open dispute: what the dispute team needs to look at it."""

    evidence_id: Id
    dispute_id: Id
    contract_id: Id
    party: EvidenceParty
    text: EvidenceText
    attachments: list[EvidenceAttachment]


class MilestoneFinalized(NotificationData):
    contract_id: Id
    milestone_id: Id


class EscrowFrozen(NotificationData):
    chargeback_id: Id
    payment_id: Id
    contract_id: Id
    milestone_ids: list[Id]


class EscrowUnfrozen(NotificationData):
    chargeback_id: Id
    payment_id: Id
    contract_id: Id
    milestone_ids: list[Id]


class ChargebackResolvedNotice(NotificationData):
    chargeback_id: Id
    payment_id: Id
    outcome: ChargebackOutcome
    currency: Currency
    amount_minor: SumMinor
    issuer_fee_minor: SumMinor
    passed_to_client_minor: SumMinor


class AccountFlagged(NotificationData):
    user_id: Id
    reason: Literal["chargeback_on_accepted_work"]
    chargeback_id: Id


class AddonRefunded(NotificationData):
    addon_id: Id
    user_id: Id
    currency: Currency
    amount_minor: SumMinor


class AddonRefundRejected(NotificationData):
    event_id: Id
    addon_id: Id
    reason: ReasonCode


class PointsClawedBack(NotificationData):
    user_id: Id
    milestone_id: Id
    points: SumMinor


class WithdrawalScheduled(NotificationData):
    withdrawal_id: Id
    user_id: Id
    currency: Currency
    amount_minor: SumMinor
    earliest_on: IsoDate
    latest_on: IsoDate


class ReviewsHidden(NotificationData):
    contract_id: Id
    currency: Currency
    net_value_minor: SumMinor


class ReviewWindowClosed(NotificationData):
    contract_id: Id
    closed_at: UtcDateTime


class ProcessorFeePassedThrough(NotificationData):
    payment_id: Id
    contract_id: Id | None
    currency: Currency
    processor_fee_refunded_minor: SumMinor
    passed_to_client_minor: SumMinor


class EventRejected(NotificationData):
    """A refused event that has no `*.rejected` type of its own (a release, a withdrawal...)."""

    event_id: Id
    event_type: StrictStr
    subject_id: Id | None
    reason: ReasonCode


NOTIFICATION_DATA: dict[str, type[NotificationData]] = {
    "refund.requested": RefundRequestedNotice,
    "refund.completed": RefundCompleted,
    "refund.rejected": RefundRejected,
    "refund.declined": RefundDeclinedNotice,
    "refund.escalated": RefundEscalatedNotice,
    "refund.fee_deduction_notice": RefundFeeDeductionNotice,
    "dispute.opened": DisputeOpenedNotice,
    "dispute.resolved": DisputeResolvedNotice,
    "dispute.rejected": DisputeRejected,
    "dispute.overdue": DisputeOverdue,
    "dispute.evidence_added": DisputeEvidenceAddedNotice,
    "milestone.finalized": MilestoneFinalized,
    "escrow.frozen": EscrowFrozen,
    "escrow.unfrozen": EscrowUnfrozen,
    "chargeback.resolved": ChargebackResolvedNotice,
    "account.flagged": AccountFlagged,
    "addon.refunded": AddonRefunded,
    "addon.refund_rejected": AddonRefundRejected,
    "points.clawed_back": PointsClawedBack,
    "withdrawal.scheduled": WithdrawalScheduled,
    "reviews.hidden": ReviewsHidden,
    "review_window.closed": ReviewWindowClosed,
    "processor_fee.passed_through": ProcessorFeePassedThrough,
    "event.rejected": EventRejected,
}

NotificationType = Literal[
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
]


class Notification(BaseModel):
    """One notification; `data` is checked against the model of its `type`."""

    model_config = MESSAGE_CONFIG

    # Longer than an event id: it is `<cause id>:<type>[:<key>]`, the cause an event id.
    notification_id: Annotated[StrictStr, Field(min_length=1, max_length=400)]
    type: NotificationType
    occurred_at: UtcDateTime
    recipients: Annotated[list[Recipient], Field(min_length=1)]
    data: SerializeAsAny[NotificationData]

    @classmethod
    def build(
        cls,
        *,
        notification_id: str,
        occurred_at: object,
        recipients: list[str],
        data: NotificationData,
    ) -> Notification:
        """Make a notification whose `type` is the one that `data`'s model stands for."""
        type_ = NOTIFICATION_TYPE_OF[type(data)]
        return cls.model_validate(
            {
                "notification_id": notification_id,
                "type": type_,
                "occurred_at": occurred_at,
                "recipients": recipients,
                "data": data,
            }
        )


NOTIFICATION_TYPE_OF: dict[type[NotificationData], str] = {
    model: name for name, model in NOTIFICATION_DATA.items()
}
