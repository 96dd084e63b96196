"""The inbound events of MESSAGES.md: one `data` model per type, one envelope per type.

Each envelope class pins `type` to a literal, so the union of all of them is a discriminated
union: the registry picks the model from `type` and validation names the exact field at fault.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from messages.fields import (
    MESSAGE_CONFIG,
    AmountMinor,
    ByteCount,
    Currency,
    EvidenceText,
    FileName,
    HttpsUrl,
    Id,
    Jurisdiction,
    MediaType,
    Monday,
    PositiveAmountMinor,
    SchemaVersion,
    Sha256,
    Text,
    UtcDateTime,
)

ContractKind = Literal["fixed", "hourly"]
PolicyName = Literal["spectrum", "cadcrowd"]
WorkEvidence = Literal["delivery", "upload", "kickoff_message"]
Releaser = Literal["client", "dispute_team"]
Approver = Literal["creator", "support"]
DisputeOutcome = Literal["full_refund", "partial_refund", "release_to_creator"]
ChargebackOutcome = Literal["client_won", "client_lost"]
AddonKind = Literal["profile_boost", "featured_placement"]
EvidenceParty = Literal["client", "creator"]
MAX_ATTACHMENTS = 20


class EventData(BaseModel):
    model_config = MESSAGE_CONFIG


class ContractOpened(EventData):
    contract_id: Id
    kind: ContractKind
    client_id: Id
    creator_id: Id
    currency: Currency
    policy: PolicyName | None = None
    client_jurisdiction: Jurisdiction | None = None


class ContractClosed(EventData):
    contract_id: Id


class MilestoneFunded(EventData):
    contract_id: Id
    milestone_id: Id
    payment_id: Id
    amount_minor: PositiveAmountMinor
    processor_fee_minor: AmountMinor


class WorkStarted(EventData):
    contract_id: Id
    milestone_id: Id
    evidence: WorkEvidence


class MilestoneReleased(EventData):
    contract_id: Id
    milestone_id: Id
    released_by: Releaser


class HourlyInvoicePaid(EventData):
    contract_id: Id
    invoice_id: Id
    period_start: Monday
    payment_id: Id
    amount_minor: PositiveAmountMinor
    processor_fee_minor: AmountMinor


class RefundRequested(EventData):
    request_id: Id
    contract_id: Id
    target_id: Id
    amount_minor: PositiveAmountMinor
    reason: Text


class RefundApproved(EventData):
    contract_id: Id
    target_id: Id
    amount_minor: PositiveAmountMinor
    approved_by: Approver
    request_id: Id | None = None
    decided_by: Id | None = Field(
        default=None, description="The operator who decided, when support acts."
    )


class RefundDeclined(EventData):
    request_id: Id
    contract_id: Id
    declined_by: Approver
    decided_by: Id | None = Field(
        default=None, description="The operator who decided, when support acts."
    )


class RefundEscalated(EventData):
    request_id: Id
    contract_id: Id


class DisputeOpened(EventData):
    dispute_id: Id
    contract_id: Id
    target_id: Id
    reason: Text


class DisputeResolved(EventData):
    # The rule of the validator below, for JSON Schema readers in other languages.
    model_config = ConfigDict(
        **MESSAGE_CONFIG,
        json_schema_extra={
            "if": {"properties": {"outcome": {"const": "partial_refund"}}},
            "then": {
                "required": ["refund_amount_minor"],
                "properties": {"refund_amount_minor": {"type": "integer"}},
            },
            "else": {"properties": {"refund_amount_minor": {"type": "null"}}},
        },
    )

    dispute_id: Id
    contract_id: Id
    outcome: DisputeOutcome
    # validate_default runs the check below even when the field is absent, so the error names
    # `data.refund_amount_minor` rather than the whole of `data`.
    refund_amount_minor: PositiveAmountMinor | None = Field(
        default=None,
        validate_default=True,
        description="Required when outcome is partial_refund, absent otherwise.",
    )

    @field_validator("refund_amount_minor")
    @classmethod
    def _amount_goes_with_partial_refund(
        cls, value: int | None, info: ValidationInfo
    ) -> int | None:
        outcome = info.data.get("outcome")
        if outcome == "partial_refund" and value is None:
            raise ValueError("is required when outcome is partial_refund")
        if outcome is not None and outcome != "partial_refund" and value is not None:
            raise ValueError("is only allowed when outcome is partial_refund")
        return value

    # Declared after the amount, so that its validator above sees `outcome` already read.
    decided_by: Id | None = Field(default=None, description="The operator who decided.")


class EvidenceAttachment(EventData):
    """A file that the marketplace hosts; the engine keeps its description, not its bytes."""

    name: FileName
    media_type: MediaType
    size_bytes: ByteCount
    sha256: Sha256
    url: HttpsUrl


class DisputeEvidenceAdded(EventData):
    evidence_id: Id
    dispute_id: Id
    contract_id: Id
    party: EvidenceParty
    text: EvidenceText
    attachments: list[EvidenceAttachment] = Field(max_length=MAX_ATTACHMENTS)


class ChargebackOpened(EventData):
    chargeback_id: Id
    payment_id: Id
    amount_minor: PositiveAmountMinor
    issuer_fee_minor: AmountMinor


class ChargebackResolved(EventData):
    chargeback_id: Id
    outcome: ChargebackOutcome


class ProcessorFeeRefunded(EventData):
    payment_id: Id
    amount_minor: PositiveAmountMinor


class AddonPurchased(EventData):
    addon_id: Id
    user_id: Id
    kind: AddonKind
    payment_id: Id
    amount_minor: PositiveAmountMinor
    currency: Currency


class AddonStarted(EventData):
    addon_id: Id


class AddonRefundRequested(EventData):
    addon_id: Id


class PointsAwarded(EventData):
    user_id: Id
    points: PositiveAmountMinor
    milestone_id: Id | None = None


class PointsCashoutPaid(EventData):
    cashout_id: Id
    user_id: Id
    points: PositiveAmountMinor


class PointsCashoutReversed(EventData):
    cashout_id: Id
    fraud_claim_id: Id


class WithdrawalRequested(EventData):
    withdrawal_id: Id
    user_id: Id
    amount_minor: PositiveAmountMinor
    currency: Currency


class DeadlineTick(EventData):
    """No fields: the tick's time is the envelope's `occurred_at`."""


class Envelope(BaseModel):
    """What every inbound message carries around its `data`."""

    model_config = MESSAGE_CONFIG

    event_id: Id
    type: str
    occurred_at: UtcDateTime
    schema_version: SchemaVersion
    data: EventData


class ContractOpenedEvent(Envelope):
    type: Literal["contract.opened"]
    data: ContractOpened


class ContractClosedEvent(Envelope):
    type: Literal["contract.closed"]
    data: ContractClosed


class MilestoneFundedEvent(Envelope):
    type: Literal["milestone.funded"]
    data: MilestoneFunded


class WorkStartedEvent(Envelope):
    type: Literal["work.started"]
    data: WorkStarted


class MilestoneReleasedEvent(Envelope):
    type: Literal["milestone.released"]
    data: MilestoneReleased


class HourlyInvoicePaidEvent(Envelope):
    type: Literal["hourly.invoice_paid"]
    data: HourlyInvoicePaid


class RefundRequestedEvent(Envelope):
    type: Literal["refund.requested"]
    data: RefundRequested


class RefundApprovedEvent(Envelope):
    type: Literal["refund.approved"]
    data: RefundApproved


class RefundDeclinedEvent(Envelope):
    type: Literal["refund.declined"]
    data: RefundDeclined


class RefundEscalatedEvent(Envelope):
    type: Literal["refund.escalated"]
    data: RefundEscalated


class DisputeOpenedEvent(Envelope):
    type: Literal["dispute.opened"]
    data: DisputeOpened


class DisputeResolvedEvent(Envelope):
    type: Literal["dispute.resolved"]
    data: DisputeResolved


class DisputeEvidenceAddedEvent(Envelope):
    type: Literal["dispute.evidence_added"]
    data: DisputeEvidenceAdded


class ChargebackOpenedEvent(Envelope):
    type: Literal["chargeback.opened"]
    data: ChargebackOpened


class ChargebackResolvedEvent(Envelope):
    type: Literal["chargeback.resolved"]
    data: ChargebackResolved


class ProcessorFeeRefundedEvent(Envelope):
    type: Literal["processor.fee_refunded"]
    data: ProcessorFeeRefunded


class AddonPurchasedEvent(Envelope):
    type: Literal["addon.purchased"]
    data: AddonPurchased


class AddonStartedEvent(Envelope):
    type: Literal["addon.started"]
    data: AddonStarted


class AddonRefundRequestedEvent(Envelope):
    type: Literal["addon.refund_requested"]
    data: AddonRefundRequested


class PointsAwardedEvent(Envelope):
    type: Literal["points.awarded"]
    data: PointsAwarded


class PointsCashoutPaidEvent(Envelope):
    type: Literal["points.cashout_paid"]
    data: PointsCashoutPaid


class PointsCashoutReversedEvent(Envelope):
    type: Literal["points.cashout_reversed"]
    data: PointsCashoutReversed


class WithdrawalRequestedEvent(Envelope):
    type: Literal["withdrawal.requested"]
    data: WithdrawalRequested


class DeadlineTickEvent(Envelope):
    type: Literal["deadline.tick"]
    data: DeadlineTick


def event_type_of(model: type[Envelope]) -> str:
    """The `type` an envelope model stands for: the one value of its `type` literal."""
    (event_type,) = get_args(model.model_fields["type"].annotation)
    if not isinstance(event_type, str):
        raise TypeError(f"{model.__name__}.type is not a string literal")
    return event_type


# Every envelope class above, in the order they are defined (the order of the generated
# schemas): a new type is its data model and its envelope, and nothing to list again here.
INBOUND_EVENTS: tuple[type[Envelope], ...] = tuple(Envelope.__subclasses__())
