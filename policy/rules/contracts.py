"""Contracts: opened once, closed once (a close starts the CC-7 review window and, under
`spectrum`, the SC-4 windows of released milestones). There is no reopening."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from messages.inbound import ContractOpened
from policy.outcomes import Rejected
from policy.state import ContractState


def open_contract(
    existing: ContractState | None, data: ContractOpened, policy_name: str, at: datetime
) -> ContractState | Rejected:
    if existing is not None:
        return Rejected("invalid_state", f"contract {data.contract_id} is already open")
    return ContractState(
        contract_id=data.contract_id,
        kind=data.kind,
        client_id=data.client_id,
        creator_id=data.creator_id,
        currency=data.currency,
        policy=policy_name,
        client_jurisdiction=data.client_jurisdiction,
        opened_at=at,
        closed_at=None,
        paid_total_minor=0,
        refunded_total_minor=0,
        reviews_hidden=False,
    )


def close_contract(contract: ContractState, at: datetime) -> ContractState | Rejected:
    if contract.closed_at is not None:
        return Rejected("invalid_state", f"closed at {contract.closed_at.isoformat()}")
    return dataclasses.replace(contract, closed_at=at)


def contract_mismatch(
    named_contract_id: str, subject_contract_id: str, subject: str
) -> Rejected | None:
    """A decision names the contract it is about; one naming another contract than its
    subject's (a request's, a dispute's) is refused rather than applied to either."""
    if named_contract_id == subject_contract_id:
        return None
    return Rejected(
        "invalid_state",
        f"{subject} belongs to contract {subject_contract_id}, not {named_contract_id}",
    )
