"""Milestones of fixed contracts: funding, work started, release, finality (SC-1, SC-4).

A milestone's states (`TargetState.status`):

- `funded`: its money is in escrow (SC-1). Work may start (`work_started_at`), which turns a
  refund request from an automatic refund (SC-2) into a dispute (SC-3). A partial refund
  leaves it `funded` with less in escrow.
- `released`: the client or the dispute team released what escrow held to the creator, less
  the creator fee still due. Under `spectrum` it can be disputed until its SC-4 window
  closes; under `cadcrowd` it is accepted work (CC-10). A partial clawback leaves it so.
- `final`: (`spectrum`) its SC-4 window closed at a deadline; no new dispute, while a
  dispute opened in time still settles, and a voluntary creator refund is still possible.
- `refunded`: all of its amount was refunded (terminal).

`frozen` (set by a chargeback, SC-11) is beside the status: a frozen milestone is neither
released nor refunded until the chargeback resolves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from ledger.codes import TransferCode
from messages.inbound import MilestoneFunded
from policy.config import Fees
from policy.money import fee_minor
from policy.outcomes import Rejected
from policy.rules.legs import (
    EXTERNAL_CARD,
    EXTERNAL_PROCESSOR,
    PLATFORM_FEES,
    PLATFORM_PROCESSOR_FEES,
    Leg,
    escrow_account,
    user_account,
)
from policy.rules.targets import ownership_refusal
from policy.state import ContractState, PaymentState, TargetState


@dataclass(frozen=True, slots=True)
class Funding:
    milestone: TargetState
    payment: PaymentState
    contract: ContractState
    legs: list[Leg]


def fund_milestone(
    contract: ContractState,
    data: MilestoneFunded,
    fees: Fees,
    at: datetime,
    *,
    existing: TargetState | None,
    payment: PaymentState | None,
) -> Funding | Rejected:
    """Funding puts the amount in escrow and the client fee in the platform's fees (SC-1).

    Both fees are fixed now, at the policy's rates: the client fee is charged now, the
    creator fee at release. `existing` is a target already recorded under the milestone's
    id; `payment` the payment already recorded under its id, since one card payment may fund
    several milestones of one contract.
    """
    if contract.kind != "fixed":
        return Rejected("invalid_state", "an hourly contract has no milestones")
    if contract.closed_at is not None and at > contract.closed_at:
        # Judged by time, not by arrival: a funding charged while the contract was open is
        # accepted even when the close was handled first (events of one contract can overtake
        # each other between workers, and the card was charged either way).
        return Rejected("invalid_state", f"the contract closed at {contract.closed_at.isoformat()}")
    if existing is not None:
        return Rejected("invalid_state", f"{data.milestone_id} is already funded")
    if payment is not None and payment.contract_id != contract.contract_id:
        return Rejected("invalid_state", f"payment {data.payment_id} paid another contract")
    amount = data.amount_minor
    client_fee = fee_minor(amount, fees.client_fee_bps)
    milestone = TargetState(
        target_id=data.milestone_id,
        kind="milestone",
        contract_id=contract.contract_id,
        payment_id=data.payment_id,
        currency=contract.currency,
        amount_minor=amount,
        client_fee_minor=client_fee,
        creator_fee_minor=fee_minor(amount, fees.creator_fee_bps),
        processor_fee_minor=data.processor_fee_minor,
        paid_at=at,
        period_start=None,
        work_started_at=None,
        released_at=None,
        released_minor=0,
        refunded_minor=0,
        client_fee_reversed_minor=0,
        creator_fee_reversed_minor=0,
        creator_fee_charged_minor=0,
        clawed_back_minor=0,
        status="funded",
        frozen=False,
        final_at=None,
    )
    charged = amount + client_fee
    if payment is None:
        payment = PaymentState(
            payment_id=data.payment_id,
            contract_id=contract.contract_id,
            payer_id=contract.client_id,
            currency=contract.currency,
            charge_total_minor=charged,
            processor_fee_minor=data.processor_fee_minor,
            processor_fee_refunded_minor=0,
            deducted_from_client_minor=0,
            passed_through_minor=0,
            paid_at=at,
        )
    else:
        payment = dataclasses.replace(
            payment,
            charge_total_minor=payment.charge_total_minor + charged,
            processor_fee_minor=payment.processor_fee_minor + data.processor_fee_minor,
        )
    return Funding(
        milestone=milestone,
        payment=payment,
        contract=dataclasses.replace(contract, paid_total_minor=contract.paid_total_minor + amount),
        legs=[
            Leg(EXTERNAL_CARD, escrow_account(milestone.target_id), amount, TransferCode.FUNDING),
            Leg(EXTERNAL_CARD, PLATFORM_FEES, client_fee, TransferCode.CLIENT_FEE),
            Leg(
                PLATFORM_PROCESSOR_FEES,
                EXTERNAL_PROCESSOR,
                data.processor_fee_minor,
                TransferCode.PROCESSOR_FEE,
            ),
        ],
    )


def start_work(
    contract: ContractState, milestone: TargetState, at: datetime
) -> TargetState | Rejected | None:
    """Record that work started (SC-2/SC-3); None when an earlier start is already recorded.

    The earliest start counts, so a start reported late still turns a later request into a
    dispute, and never one that came before it.
    """
    refusal = ownership_refusal(contract, milestone) or _milestone_refusal(milestone)
    if refusal is not None:
        return refusal
    if milestone.work_started_at is not None and milestone.work_started_at <= at:
        return None
    return dataclasses.replace(milestone, work_started_at=at)


@dataclass(frozen=True, slots=True)
class Release:
    milestone: TargetState
    released_minor: int
    creator_fee_minor: int
    legs: list[Leg]


def release_milestone(
    contract: ContractState, milestone: TargetState, at: datetime
) -> Release | Rejected:
    """Release what escrow holds to the creator, less the creator fee still due (SC-1).

    The fee due is the creator fee less what SC-6 already reversed on refunds from escrow.
    """
    refusal = ownership_refusal(contract, milestone) or _milestone_refusal(milestone)
    if refusal is not None:
        return refusal
    if milestone.status != "funded":
        return Rejected("invalid_state", f"{milestone.target_id} is {milestone.status}")
    if milestone.frozen:
        return Rejected("frozen", f"{milestone.target_id} is frozen by a chargeback")
    held = milestone.held_in_escrow_minor
    fee_due = milestone.creator_fee_minor - milestone.creator_fee_reversed_minor
    escrow = escrow_account(milestone.target_id)
    return Release(
        milestone=dataclasses.replace(
            milestone,
            status="released",
            released_at=at,
            released_minor=milestone.released_minor + held,
            creator_fee_charged_minor=milestone.creator_fee_charged_minor + fee_due,
        ),
        released_minor=held,
        creator_fee_minor=fee_due,
        legs=[
            Leg(escrow, user_account(contract.creator_id), held - fee_due, TransferCode.RELEASE),
            Leg(escrow, PLATFORM_FEES, fee_due, TransferCode.CREATOR_FEE),
        ],
    )


def _milestone_refusal(target: TargetState) -> Rejected | None:
    if target.kind != "milestone":
        return Rejected("invalid_state", f"{target.target_id} is an {target.kind}")
    return None


def finalize_milestone(milestone: TargetState, at: datetime) -> TargetState | None:
    """SC-4: at the deadline a released milestone becomes final; None if it is not released
    any more (refunded in full meanwhile)."""
    if milestone.status != "released":
        return None
    return dataclasses.replace(milestone, status="final", final_at=at)
