"""Legs: the money movements a rule decides, before they become the book's transfers.

A rule returns legs (debit, credit, amount, code) without ids or times; the handler turns
them into transfers of its cause (`HandlerContext.post_legs`). Legs of zero are allowed and
dropped when posted, so a rule can list every leg of a flow of docs/money-flows.md whether or
not it moves anything this time.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.codes import TransferCode

PLATFORM_FEES = "platform:fees"
PLATFORM_PROCESSOR_FEES = "platform:processor_fees"
PLATFORM_CHARGEBACKS = "platform:chargebacks"
PLATFORM_ADDONS = "platform:addons"
EXTERNAL_CARD = "external:card"
EXTERNAL_PROCESSOR = "external:processor"


def user_account(user_id: str) -> str:
    return f"user:{user_id}"


def escrow_account(milestone_id: str) -> str:
    return f"escrow:{milestone_id}"


@dataclass(frozen=True, slots=True)
class Leg:
    debit: str
    credit: str
    amount_minor: int
    code: TransferCode

    def __post_init__(self) -> None:
        if self.amount_minor < 0:
            raise ValueError(f"a leg moves a non-negative amount, not {self.amount_minor}")
