"""The audit: proof from the rows themselves that the books are sound.

1. Per currency, debits equal credits over all balance rows, posted and pending apart: every
   transfer adds the same amount to one account's debits and another's credits.
2. Every account's stored totals (summed over its shards) equal what its entries add up to:
   posted and posting transfers count as posted; a hold counts as pending until a later
   transfer posts or voids it.
3. No account that must not go negative has less than zero available.
4. Every transfer that resolves a hold names a pending transfer, posts no more than it held,
   and a void releases exactly what it held.

Run it in a transaction that sees one snapshot (REPEATABLE READ on PostgreSQL), or writers
committing between its queries show up as differences.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, Subquery, and_, case, func, literal, select, union_all

from ledger.tables import accounts, balances, transfers
from ledger.transfers import TransferKind


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    posted_debits_minor: int = 0
    posted_credits_minor: int = 0
    pending_debits_minor: int = 0
    pending_credits_minor: int = 0

    @property
    def posted_sum_minor(self) -> int:
        """Sum of all posted balances (credits - debits): zero when the books balance."""
        return self.posted_credits_minor - self.posted_debits_minor

    @property
    def pending_sum_minor(self) -> int:
        return self.pending_credits_minor - self.pending_debits_minor


@dataclass(frozen=True, slots=True)
class AuditReport:
    currencies: list[CurrencyTotals]
    accounts_checked: int
    transfers_checked: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "accounts_checked": self.accounts_checked,
            "transfers_checked": self.transfers_checked,
            "currencies": {
                totals.currency: {
                    "posted_debits_minor": totals.posted_debits_minor,
                    "posted_credits_minor": totals.posted_credits_minor,
                    "pending_debits_minor": totals.pending_debits_minor,
                    "pending_credits_minor": totals.pending_credits_minor,
                }
                for totals in self.currencies
            },
        }


Totals = tuple[int, int, int, int]  # posted debits, posted credits, pending debits, credits


def audit(conn: Connection) -> AuditReport:
    problems: list[str] = []
    stored = _stored_totals(conn)
    derived = _derived_totals(conn)

    per_currency: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for account_id, (row, totals) in stored.items():
        label = f"{row.name} {row.currency}"
        sums = per_currency[row.currency]
        for index, value in enumerate(totals):
            sums[index] += value
        expected = derived.get(account_id, (0, 0, 0, 0))
        if totals != expected:
            problems.append(
                f"{label}: stored totals {_describe(totals)} differ from its entries"
                f" {_describe(expected)}"
            )
        available = totals[1] - totals[0] - totals[2]
        if not row.may_go_negative and available < 0:
            problems.append(f"{label}: {available} available on an account that may not go below 0")
    for account_id in derived.keys() - stored.keys():
        problems.append(f"account id {account_id} has entries but no balance rows")

    currencies = [
        CurrencyTotals(currency, *sums) for currency, sums in sorted(per_currency.items())
    ]
    for currency_totals in currencies:
        currency = currency_totals.currency
        if currency_totals.posted_sum_minor != 0:
            problems.append(
                f"{currency}: posted balances sum to {currency_totals.posted_sum_minor}, not 0"
            )
        if currency_totals.pending_sum_minor != 0:
            problems.append(
                f"{currency}: pending balances sum to {currency_totals.pending_sum_minor}, not 0"
            )
    problems.extend(_bad_resolutions(conn))
    return AuditReport(
        currencies=currencies,
        accounts_checked=len(stored),
        transfers_checked=int(conn.scalar(select(func.count()).select_from(transfers)) or 0),
        problems=problems,
    )


def _describe(totals: Totals) -> str:
    posted_debits, posted_credits, pending_debits, pending_credits = totals
    return (
        f"(posted -{posted_debits} +{posted_credits}, pending -{pending_debits} +{pending_credits})"
    )


def _stored_totals(conn: Connection) -> dict[int, tuple[Row[Any], Totals]]:
    """Per account, its row and its balance rows' totals, added up here: exact on both
    backends (SQLite's SUM over a hot account's shards could pass 2^63 - 1, and fail, though
    each row is within it). An account without balance rows has zero totals."""
    rows = conn.execute(
        select(
            accounts.c.id,
            accounts.c.name,
            accounts.c.currency,
            accounts.c.may_go_negative,
            balances.c.posted_debits,
            balances.c.posted_credits,
            balances.c.pending_debits,
            balances.c.pending_credits,
        ).outerjoin(balances, balances.c.account_id == accounts.c.id)
    )
    found: dict[int, tuple[Row[Any], Totals]] = {}
    for row in rows:
        shard: Totals = (
            int(row.posted_debits or 0),
            int(row.posted_credits or 0),
            int(row.pending_debits or 0),
            int(row.pending_credits or 0),
        )
        earlier = found.get(row.id)
        if earlier is not None:
            shard = _added(earlier[1], shard)
        found[row.id] = (row, shard)
    return found


def _added(one: Totals, other: Totals) -> Totals:
    return (one[0] + other[0], one[1] + other[1], one[2] + other[2], one[3] + other[3])


def _derived_totals(conn: Connection) -> dict[int, Totals]:
    """Per account, what its entries add up to, on the same four totals as a balance row.

    PostgreSQL sums them itself: SUM of a BIGINT is NUMERIC, exact. SQLite's SUM of 64-bit
    integers fails past 2^63 - 1, which an account's entries may pass (a hot account's shards
    are bounded one by one), so there each side of each transfer is added up here."""
    sides = _sides()
    if conn.dialect.name == "postgresql":
        return {
            int(row.account_id): (
                int(row.posted_debits),
                int(row.posted_credits),
                int(row.pending_debits),
                int(row.pending_credits),
            )
            for row in conn.execute(
                select(
                    sides.c.account_id,
                    func.sum(sides.c.posted_debits).label("posted_debits"),
                    func.sum(sides.c.posted_credits).label("posted_credits"),
                    func.sum(sides.c.pending_debits).label("pending_debits"),
                    func.sum(sides.c.pending_credits).label("pending_credits"),
                ).group_by(sides.c.account_id)
            )
        }
    derived: dict[int, Totals] = {}
    for row in conn.execute(select(sides)):
        account_id = int(row.account_id)
        side: Totals = (
            int(row.posted_debits),
            int(row.posted_credits),
            int(row.pending_debits),
            int(row.pending_credits),
        )
        earlier = derived.get(account_id)
        derived[account_id] = side if earlier is None else _added(earlier, side)
    return derived


def _sides() -> Subquery:
    """One row per side of each transfer: the account and what the transfer adds to its four
    totals."""
    resolution = transfers.alias("resolution")
    posted = transfers.c.kind.in_([TransferKind.POSTED.value, TransferKind.POST_PENDING.value])
    still_pending = and_(transfers.c.kind == TransferKind.PENDING.value, resolution.c.id.is_(None))
    amount = transfers.c.amount_minor
    posted_amount = case((posted, amount), else_=0)
    pending_amount = case((still_pending, amount), else_=0)
    source = transfers.outerjoin(resolution, resolution.c.pending_id == transfers.c.id)
    zero = literal(0)
    return union_all(
        select(
            transfers.c.debit_account_id.label("account_id"),
            posted_amount.label("posted_debits"),
            zero.label("posted_credits"),
            pending_amount.label("pending_debits"),
            zero.label("pending_credits"),
        ).select_from(source),
        select(
            transfers.c.credit_account_id.label("account_id"),
            zero.label("posted_debits"),
            posted_amount.label("posted_credits"),
            zero.label("pending_debits"),
            pending_amount.label("pending_credits"),
        ).select_from(source),
    ).subquery()


def _bad_resolutions(conn: Connection) -> list[str]:
    held = transfers.alias("held")
    rows = conn.execute(
        select(
            transfers.c.transfer_id,
            transfers.c.kind,
            transfers.c.amount_minor,
            held.c.transfer_id.label("held_id"),
            held.c.kind.label("held_kind"),
            held.c.amount_minor.label("held_amount"),
        )
        .join(held, held.c.id == transfers.c.pending_id)
        .where(
            (held.c.kind != TransferKind.PENDING.value)
            | (transfers.c.amount_minor > held.c.amount_minor)
            | (
                (transfers.c.kind == TransferKind.VOID_PENDING.value)
                & (transfers.c.amount_minor != held.c.amount_minor)
            )
        )
    )
    return [
        f"transfer {row.transfer_id} ({row.kind} of {row.amount_minor}) resolves"
        f" {row.held_id} ({row.held_kind} of {row.held_amount})"
        for row in rows
    ]
