"""Checks every refund and dispute makes of its target (a milestone or an invoice)."""

from __future__ import annotations

from policy.outcomes import Rejected
from policy.state import ContractState, TargetState


def ownership_refusal(contract: ContractState, target: TargetState) -> Rejected | None:
    """The event names a target of another contract."""
    if target.contract_id != contract.contract_id:
        return Rejected(
            "invalid_state",
            f"{target.target_id} belongs to contract {target.contract_id}, "
            f"not {contract.contract_id}",
        )
    return None


def amount_refusal(
    contract: ContractState, target: TargetState, refund_minor: int
) -> Rejected | None:
    """A refund beyond the contract's paid value net of refunds (CC-4, both presets), or
    beyond what is left of the target (`exceeds_refundable`)."""
    if refund_minor > contract.net_value_minor:
        return Rejected(
            "exceeds_contract_total",
            f"{refund_minor} asked, the contract's net paid value is {contract.net_value_minor}",
        )
    if refund_minor > target.refundable_minor:
        return Rejected(
            "exceeds_refundable",
            f"{refund_minor} asked, {target.refundable_minor} of {target.target_id} is left",
        )
    return None
