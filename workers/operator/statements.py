"""An account's balance and its statement: every entry, its cause, and the running balance.

Amounts are from the owner's side, as the replay report shows them: credits minus debits,
except for the two accounts that are the platform's costs (`platform:processor_fees`,
`platform:chargebacks`), shown as debits minus credits so that a positive number is what the
platform bears (docs/money-flows.md). The running balance is the available one: a pending
debit (a withdrawal on hold) takes the money out of reach at once, and posting it later
changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ledger import Book, Entry, InvalidTransfer, TransferKind, policy_for
from ledger.tables import accounts
from workers.operator.entries import cause_of, event_types
from workers.operator.errors import NotFound, OperatorError, UsageProblem
from workers.operator.formats import jsonable

COST_ACCOUNTS = frozenset({"platform:processor_fees", "platform:chargebacks"})

ACCOUNT_NAMES_HELP = (
    "an account is user:<id>, escrow:<milestone_id>, points:<id>, platform:<name> or "
    "external:<name>; `recourse contract ID` lists the ones a contract used"
)


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account: str
    currency: str
    cost_account: bool
    posted_minor: int
    held_minor: int  # pending debits: on its way out, no longer spendable
    incoming_minor: int  # pending credits: on its way in, not spendable yet
    available_minor: int
    frozen: bool
    entries: int


@dataclass(frozen=True, slots=True)
class StatementLine:
    at: datetime
    transfer_id: str
    kind: str
    code: str
    counterparty: str
    change_minor: int  # on the available balance
    posted_change_minor: int
    balance_minor: int  # available, after this entry
    event_id: str
    event_type: str | None
    cause: str


@dataclass(frozen=True, slots=True)
class Statement:
    account: str
    currency: str
    cost_account: bool
    since: datetime | None
    until: datetime | None
    opening_minor: int
    closing_minor: int
    lines: list[StatementLine]

    def as_json(self) -> dict[str, Any]:
        return dict(jsonable(self))


def check_account_name(name: str) -> None:
    """Refuse a name that no account can have, as a usage mistake."""
    try:
        policy_for(name)
    except InvalidTransfer as exc:
        raise UsageProblem(f"{exc}", ACCOUNT_NAMES_HELP) from None


def currencies_of(conn: Connection, name: str, currency: str | None, *, where: str) -> list[str]:
    """The currencies to show for account `name`: `currency`, or every one it holds."""
    check_account_name(name)
    held: list[str] = sorted(
        conn.execute(select(accounts.c.currency).where(accounts.c.name == name)).scalars()
    )
    if not held:
        raise NotFound("account", name, where, ACCOUNT_NAMES_HELP)
    if currency is None:
        return held
    if currency not in held:
        raise OperatorError(
            f"account {name!r} holds no {currency} in {where}",
            f"it holds {', '.join(held)}: pass one of those to --currency",
        )
    return [currency]


def account_balance(conn: Connection, name: str, currency: str) -> AccountBalance:
    book = Book(conn)
    balance = book.balance(name, currency)
    sign = _sign(name)
    return AccountBalance(
        account=name,
        currency=currency,
        cost_account=name in COST_ACCOUNTS,
        posted_minor=sign * balance.posted_minor,
        held_minor=balance.pending_debits_minor,
        incoming_minor=balance.pending_credits_minor,
        available_minor=sign * balance.available_minor,
        frozen=book.is_frozen(name, currency),
        entries=len(book.entries(name, currency)),
    )


def statement(
    conn: Connection,
    name: str,
    currency: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Statement:
    """The entries of (`name`, `currency`) with `since <= time < until`, with running balances.

    The opening balance is what the account had available before `since`, so the lines add
    up from it to the closing balance.
    """
    entries = Book(conn).entries(name, currency)
    types = event_types(conn, {entry.event_id for entry in entries})
    holds = {entry.transfer_id: entry.amount_minor for entry in entries}
    sign = _sign(name)
    running = 0
    opening = 0
    lines: list[StatementLine] = []
    for entry in entries:
        change = sign * available_change(entry, name, holds)
        if until is not None and entry.occurred_at >= until:
            break
        running += change
        if since is not None and entry.occurred_at < since:
            opening = running
            continue
        lines.append(
            StatementLine(
                at=entry.occurred_at,
                transfer_id=entry.transfer_id,
                kind=entry.kind.value,
                code=entry.code.value,
                counterparty=entry.debit if entry.credit == name else entry.credit,
                change_minor=change,
                posted_change_minor=sign * entry.posted_change_minor(name),
                balance_minor=running,
                event_id=entry.event_id,
                event_type=types.get(entry.event_id),
                cause=cause_of(entry.transfer_id, entry.event_id),
            )
        )
    return Statement(
        account=name,
        currency=currency,
        cost_account=name in COST_ACCOUNTS,
        since=since,
        until=until,
        opening_minor=opening,
        closing_minor=running,
        lines=lines,
    )


def _sign(name: str) -> int:
    return -1 if name in COST_ACCOUNTS else 1


def available_change(entry: Entry, name: str, holds: dict[str, int]) -> int:
    """How `entry` changed the available balance (credits - debits) of account `name`.

    A hold takes money from the debit side's reach at once and gives the credit side nothing
    until it is posted; posting or voiding it returns the whole hold and moves what is posted.
    """
    is_debit = entry.debit == name
    held = holds.get(entry.pending_id or "", entry.amount_minor)
    if entry.kind is TransferKind.POSTED:
        return -entry.amount_minor if is_debit else entry.amount_minor
    if entry.kind is TransferKind.PENDING:
        return -entry.amount_minor if is_debit else 0
    if entry.kind is TransferKind.POST_PENDING:
        return held - entry.amount_minor if is_debit else entry.amount_minor
    return held if is_debit else 0  # a voided hold returns to the debit side
