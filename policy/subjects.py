"""The subjects of events (contracts, targets, payments, disputes) as handlers load, lock and
change them: the one module every handler module shares, so that none imports another.

Every handler that changes a contract or what hangs off it locks the contract row first
(`lock_contract`), so the events of one contract are applied one at a time, in any worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from sqlalchemy import Table, bindparam, exists, select

from messages.notifications import DisputeOpenedNotice
from policy import rows
from policy.context import HandlerContext
from policy.errors import UnknownSubject
from policy.outcomes import Rejected
from policy.rules.disputes import overdue_at
from policy.rules.legs import Leg, user_account
from policy.rules.milestones import Release, release_milestone
from policy.rules.presets import released_counts_as_accepted
from policy.rules.windows import release_dispute_end
from policy.state import ContractState, DisputeState, PaymentState, TargetState
from policy.tables import contracts, disputes, payments, targets
from store.prepared import Prepared

# The kinds of deadline handlers schedule; `policy.ticks` says what each fires.
REVIEW_WINDOW = "review_window.close"
FINALIZE = "milestone.finalize"
OVERDUE = "dispute.overdue"

DISPUTE_TEAM = "dispute_team"


def lock_contract(context: HandlerContext, contract_id: str) -> ContractState:
    """The contract, locked for the rest of the transaction; UnknownSubject if not opened."""
    contract = rows.load(context.conn, contracts, ContractState, contract_id, lock=True)
    if contract is None:
        raise UnknownSubject("contract", contract_id)
    return contract


class OfContract(rows.StateRow, Protocol):
    @property
    def contract_id(self) -> str: ...


OfContractT = TypeVar("OfContractT", bound=OfContract)


def lock_via_contract(
    context: HandlerContext, table: Table, cls: type[OfContractT], key: str, kind: str
) -> tuple[ContractState, OfContractT]:
    """A row found by its own id (a request, a dispute) and its contract, both locked.

    The row names its contract, so it is read once without a lock to learn which contract to
    lock first (every event of a contract takes that lock first), then read again under its own.
    """
    found = rows.load(context.conn, table, cls, key)
    if found is None:
        raise UnknownSubject(kind, key)
    context.contract_id = found.contract_id
    contract = lock_contract(context, found.contract_id)
    return contract, rows.relock(context.conn, table, cls, key)


def lock_named(
    context: HandlerContext,
    contract_id: str,
    table: Table,
    cls: type[OfContractT],
    key: str,
    *,
    kind: str,
) -> tuple[ContractState, OfContractT]:
    """The contract an event names, locked, and a row found by its own id (a request, a
    dispute), locked after it if it is that contract's; UnknownSubject if either is missing.

    Only the named contract, the one of the event's ordering key, is locked: a row of another
    contract is returned as read, unlocked, for the caller to refuse (`contract_mismatch`), so
    that nothing of that other contract is locked or changed.
    """
    contract = lock_contract(context, contract_id)
    found = rows.load(context.conn, table, cls, key)
    if found is None:
        raise UnknownSubject(kind, key)
    if found.contract_id != contract.contract_id:
        return contract, found
    return contract, rows.relock(context.conn, table, cls, key)


def record_charge(
    context: HandlerContext,
    legs: Sequence[Leg],
    *,
    target: TargetState,
    payment: PaymentState,
    payment_existed: bool,
    contract: ContractState,
) -> None:
    """Book a newly paid target (a funded milestone, a paid invoice): the charge's transfers,
    the target, its card payment (one payment may pay several targets) and the contract's
    totals."""
    context.post_legs(legs, contract.currency)
    rows.insert_row(context.conn, targets, target)
    if payment_existed:
        rows.save_row(context.conn, payments, payment)
    else:
        rows.insert_row(context.conn, payments, payment)
    rows.save_row(context.conn, contracts, contract)


def load_target(context: HandlerContext, target_id: str, kind: str = "target") -> TargetState:
    """A milestone or an invoice, under its contract's lock; UnknownSubject if not paid yet.

    `kind` names the subject in the error (`milestone` when the event says so).
    """
    target = rows.load(context.conn, targets, TargetState, target_id, lock=True)
    if target is None:
        raise UnknownSubject(kind, target_id)
    return target


def load_paid_target(context: HandlerContext, target_id: str) -> TargetState:
    """A target that a refund or a dispute names, under its contract's lock.

    A target the engine has not seen is an UnknownSubject, which workers retry: an unseen
    milestone's funding, or an unseen invoice's payment (an invoice exists for the engine only
    once paid, so CC-11's "only after it has been paid" is this wait), may still be on its way.
    """
    target = rows.load(context.conn, targets, TargetState, target_id, lock=True)
    if target is None:
        raise UnknownSubject("target", target_id)
    return target


def contract_of(context: HandlerContext, target_id: str) -> str:
    """The contract of a target, read without a lock, to know which contract to lock first."""
    # The whole row, through `rows.load`: a prepared statement (a deadline tick asks this for
    # every milestone it finalizes), and a cache hit in a replay.
    target = rows.load(context.conn, targets, TargetState, target_id)
    if target is None:
        raise UnknownSubject("target", target_id)
    return target.contract_id


def both_sides(contract: ContractState) -> list[str]:
    return [user_account(contract.client_id), user_account(contract.creator_id)]


def schedule_finalize(
    context: HandlerContext, contract: ContractState, milestone: TargetState
) -> None:
    """SC-4: make the released milestone final when its dispute window closes.

    The window has no end while the contract is open, so the deadline is set by the release
    of a milestone of a closed contract, or by the close for the milestones released before.
    A `cadcrowd` milestone is accepted at release (CC-10) and needs none.
    """
    policy = context.policy(contract.policy)
    if released_counts_as_accepted(policy) or milestone.released_at is None:
        return
    windows = policy.windows_for(contract.client_jurisdiction)
    end = release_dispute_end(milestone.released_at, contract.closed_at, windows)
    if end is not None:
        context.schedule(FINALIZE, milestone.target_id, end, contract_id=contract.contract_id)


def locked_payment(
    context: HandlerContext, payment_id: str
) -> tuple[PaymentState, ContractState | None]:
    """The payment and its contract (an add-on's has none), locked contract first, like every
    event of a contract."""
    seen = rows.load(context.conn, payments, PaymentState, payment_id)
    if seen is None:
        raise UnknownSubject("payment", payment_id)
    contract = None
    if seen.contract_id is not None:
        context.contract_id = seen.contract_id
        contract = lock_contract(context, seen.contract_id)
    payment = rows.load(context.conn, payments, PaymentState, payment_id, lock=True)
    if payment is None:
        raise UnknownSubject("payment", payment_id)
    return payment, contract


def release(
    context: HandlerContext, contract: ContractState, milestone: TargetState
) -> Release | Rejected:
    """Release what the milestone's escrow holds (SC-1), by the client or a dispute decision,
    and start its SC-4 window."""
    decision = release_milestone(contract, milestone, context.at)
    if isinstance(decision, Rejected):
        return decision
    context.post_legs(decision.legs, milestone.currency)
    rows.save_row(context.conn, targets, decision.milestone)
    schedule_finalize(context, contract, decision.milestone)
    return decision


# Prepared once (`store.prepared`): every refund request asks it.
_OPEN_ON_TARGET = Prepared(
    select(
        exists().where(
            disputes.c.contract_id == bindparam("contract_id"),
            disputes.c.target_id == bindparam("target_id"),
            disputes.c.status == "open",
        )
    )
)


def dispute_open_on(context: HandlerContext, target: TargetState) -> bool:
    """Whether a dispute on the target is open (found through the contract's index)."""
    (row,) = _OPEN_ON_TARGET.rows(
        context.conn, {"contract_id": target.contract_id, "target_id": target.target_id}
    )
    return bool(row[0])


def start_dispute(context: HandlerContext, contract: ContractState, dispute: DisputeState) -> None:
    """Record an open dispute, set its SC-14 deadline and tell both sides and the team."""
    rows.insert_row(context.conn, disputes, dispute)
    windows = context.policy(contract.policy).windows_for(contract.client_jurisdiction)
    context.schedule(OVERDUE, dispute.dispute_id, overdue_at(dispute, windows))
    context.notify(
        [*both_sides(contract), DISPUTE_TEAM],
        DisputeOpenedNotice(
            dispute_id=dispute.dispute_id,
            contract_id=dispute.contract_id,
            target_id=dispute.target_id,
            reason=dispute.reason,
        ),
    )
