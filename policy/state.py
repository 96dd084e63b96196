"""The state of contracts and what hangs off them, as frozen dataclasses (one per table).

Field names are the column names of `policy.tables`, so `policy.rows` maps them both ways.
Rules take these and return changed copies (`dataclasses.replace`); they never touch SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ContractState:
    contract_id: str
    kind: str  # fixed | hourly
    client_id: str
    creator_id: str
    currency: str
    policy: str
    client_jurisdiction: str | None
    opened_at: datetime
    closed_at: datetime | None
    paid_total_minor: int
    refunded_total_minor: int
    reviews_hidden: bool

    @property
    def net_value_minor(self) -> int:
        return self.paid_total_minor - self.refunded_total_minor


@dataclass(frozen=True, slots=True)
class TargetState:
    """A milestone (kind `milestone`) or an invoice (kind `invoice`): what a refund targets.

    `amount_minor` is the milestone's or invoice's own amount, fees excluded; the fee columns
    hold what was charged at payment and what SC-6 has reversed so far.
    """

    target_id: str
    kind: str
    contract_id: str
    payment_id: str
    currency: str
    amount_minor: int
    client_fee_minor: int
    creator_fee_minor: int
    processor_fee_minor: int
    paid_at: datetime
    period_start: date | None
    work_started_at: datetime | None
    released_at: datetime | None
    released_minor: int
    refunded_minor: int
    client_fee_reversed_minor: int
    creator_fee_reversed_minor: int
    creator_fee_charged_minor: int
    clawed_back_minor: int
    status: str  # funded | released | refunded | final (milestones); paid | refunded (invoices)
    frozen: bool
    final_at: datetime | None

    @property
    def held_in_escrow_minor(self) -> int:
        """What escrow still holds for a milestone: funded less released less refunded from it."""
        if self.kind != "milestone":
            return 0
        return self.amount_minor - self.released_minor - self.refunded_from_escrow_minor

    @property
    def refunded_from_escrow_minor(self) -> int:
        return self.refunded_minor - self.clawed_back_minor

    @property
    def refundable_minor(self) -> int:
        return self.amount_minor - self.refunded_minor


@dataclass(frozen=True, slots=True)
class PaymentState:
    payment_id: str
    contract_id: str | None
    payer_id: str
    currency: str
    charge_total_minor: int
    processor_fee_minor: int
    processor_fee_refunded_minor: int
    deducted_from_client_minor: int
    passed_through_minor: int
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class RefundRequestState:
    request_id: str
    contract_id: str
    target_id: str
    amount_minor: int
    reason: str
    requested_at: datetime
    status: str  # pending | completed | declined | escalated | disputed | rejected
    decided_at: datetime | None
    decided_by: str | None = None  # the operator, when support decided


@dataclass(frozen=True, slots=True)
class DisputeState:
    dispute_id: str
    contract_id: str
    target_id: str
    reason: str
    opened_at: datetime
    status: str  # open | resolved
    resolved_at: datetime | None
    outcome: str | None
    refund_minor: int
    released_minor: int
    overdue_notified_at: datetime | None
    decided_by: str | None = None  # the operator who resolved it


@dataclass(frozen=True, slots=True)
class EvidenceState:
    evidence_id: str
    dispute_id: str
    contract_id: str
    party: str  # client | creator
    text: str
    attachments: list[dict[str, Any]]
    occurred_at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class ChargebackState:
    chargeback_id: str
    payment_id: str
    amount_minor: int
    issuer_fee_minor: int
    opened_at: datetime
    status: str  # open | resolved
    outcome: str | None
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class AddonState:
    addon_id: str
    user_id: str
    kind: str
    payment_id: str
    currency: str
    amount_minor: int
    purchased_at: datetime
    started_at: datetime | None
    refunded_at: datetime | None


@dataclass(frozen=True, slots=True)
class PointAwardState:
    award_id: str
    user_id: str
    milestone_id: str | None
    points: int
    clawed_back_points: int
    awarded_at: datetime


@dataclass(frozen=True, slots=True)
class CashoutState:
    cashout_id: str
    user_id: str
    points: int
    paid_at: datetime
    reversed_at: datetime | None
    fraud_claim_id: str | None


@dataclass(frozen=True, slots=True)
class WithdrawalState:
    withdrawal_id: str
    user_id: str
    currency: str
    amount_minor: int
    requested_at: datetime
    earliest_on: date
    latest_on: date
