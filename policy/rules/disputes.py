"""Disputes: who may open one on what and until when, and how a decision settles it (SC-3,
SC-4, SC-5, SC-14, CC-8, CC-10).

A dispute's states (`DisputeState.status`): `open` from `dispute.opened` (or a `spectrum`
refund request that SC-3/SC-4 turns into one, with the request's id), until
`dispute.resolved` makes it `resolved` with its outcome, what it refunded and what it
released. One dispute at a time is open per target. An open dispute older than the SLA
raises `dispute.overdue` once (SC-14); a resolved one raises nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from messages.inbound import DisputeOutcome
from policy.config import PolicyConfig, Windows
from policy.outcomes import Rejected
from policy.rules.presets import released_counts_as_accepted
from policy.rules.targets import amount_refusal, ownership_refusal
from policy.rules.windows import invoice_dispute_end, release_dispute_end
from policy.state import ContractState, DisputeState, TargetState
from scheduler.calendar import window_end


def opening_refusal(
    contract: ContractState, target: TargetState, at: datetime, policy: PolicyConfig
) -> Rejected | None:
    """Why the target cannot be disputed at `at`, or None.

    Unreleased escrow can always be disputed (SC-3; CC-10: the dispute team takes it). A
    released milestone is accepted under `cadcrowd` (CC-10, `already_released`) and disputable
    under `spectrum` until its SC-4 window closes. An invoice is disputable until the Friday
    after its billing week (CC-8). Judged by time, not by the `final` status, so a dispute
    that happened in time but arrives after the deadline fired is still accepted.
    """
    if target.refundable_minor == 0:
        return Rejected("invalid_state", f"{target.target_id} is refunded in full")
    windows = policy.windows_for(contract.client_jurisdiction)
    if target.kind == "invoice":
        end = invoice_dispute_end(target, windows)
        if at > end:
            return Rejected("window_expired", f"disputes closed at {end.isoformat()}")
        return None
    if target.status == "funded":
        return None
    if released_counts_as_accepted(policy):
        return Rejected("already_released", f"{target.target_id} was released: accepted work")
    if target.released_at is None:
        # A milestone past `funded` was released; raised, not asserted (python -O drops asserts).
        raise RuntimeError(f"{target.target_id} is {target.status} but has no release time")
    release_end = release_dispute_end(target.released_at, contract.closed_at, windows)
    if release_end is not None and at > release_end:
        return Rejected("window_expired", f"disputes closed at {release_end.isoformat()}")
    return None


def open_dispute(
    contract: ContractState,
    target: TargetState,
    at: datetime,
    policy: PolicyConfig,
    *,
    dispute_id: str,
    reason: str,
    existing: DisputeState | None,
    dispute_open: bool,
) -> DisputeState | Rejected:
    """The new open dispute, or why not.

    `existing` is the dispute already recorded under `dispute_id`, if any; `dispute_open`
    says whether a dispute on the target is open.
    """
    if existing is not None:
        return Rejected("invalid_state", f"dispute {dispute_id} already exists")
    refusal = ownership_refusal(contract, target)
    if refusal is not None:
        return refusal
    if dispute_open:
        return Rejected("invalid_state", f"a dispute on {target.target_id} is open")
    refusal = opening_refusal(contract, target, at, policy)
    if refusal is not None:
        return refusal
    return DisputeState(
        dispute_id=dispute_id,
        contract_id=contract.contract_id,
        target_id=target.target_id,
        reason=reason,
        opened_at=at,
        status="open",
        resolved_at=None,
        outcome=None,
        refund_minor=0,
        released_minor=0,
        overdue_notified_at=None,
    )


def overdue_at(dispute: DisputeState, windows: Windows) -> datetime:
    """SC-14: when an open dispute becomes overdue."""
    return window_end(dispute.opened_at, days=windows.dispute_sla_days)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a decision does to its target: refund `refund_minor`, then release the rest of
    the escrow when `release_rest`."""

    refund_minor: int
    release_rest: bool


def settle_dispute(
    dispute: DisputeState,
    contract: ContractState,
    target: TargetState,
    outcome: DisputeOutcome,
    partial_refund_minor: int | None,
) -> Settlement | Rejected:
    """SC-3 decisions: `full_refund` refunds all that is left, from escrow first and then
    clawed back (SC-5); `partial_refund` refunds the amount and releases the rest of the
    escrow; `release_to_creator` releases what escrow holds, or moves nothing if released."""
    if dispute.status != "open":
        return Rejected("invalid_state", f"dispute {dispute.dispute_id} is {dispute.status}")
    if target.frozen:
        return Rejected("frozen", f"{target.target_id} is frozen by a chargeback")
    if outcome == "full_refund":
        return Settlement(refund_minor=target.refundable_minor, release_rest=False)
    if outcome == "partial_refund":
        if partial_refund_minor is None:
            raise ValueError("a partial refund names its amount (messages validate it)")
        refusal = amount_refusal(contract, target, partial_refund_minor)
        if refusal is not None:
            return refusal
        return Settlement(refund_minor=partial_refund_minor, release_rest=True)
    return Settlement(refund_minor=0, release_rest=True)


def resolved(
    dispute: DisputeState,
    outcome: DisputeOutcome,
    refund_minor: int,
    released_minor: int,
    at: datetime,
    *,
    decided_by: str | None = None,
) -> DisputeState:
    return dataclasses.replace(
        dispute,
        status="resolved",
        resolved_at=at,
        outcome=outcome,
        refund_minor=refund_minor,
        released_minor=released_minor,
        decided_by=decided_by,
    )


def mark_overdue(dispute: DisputeState, at: datetime) -> DisputeState | None:
    """SC-14: the dispute is overdue now; None if it was resolved or already reported."""
    if dispute.status != "open" or dispute.overdue_notified_at is not None:
        return None
    return dataclasses.replace(dispute, overdue_notified_at=at)
