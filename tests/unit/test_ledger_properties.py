"""Property: any sequence of transfers, holds, full and partial posts, voids and freezes keeps
the audit green, never takes a non-negative account below zero, and agrees with a model of
the book kept in plain Python, refusal for refusal.

Each example runs in one transaction that is rolled back at the end, so every operation the
book refuses must leave nothing behind inside it (its savepoint) for the model to stay equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine

from ledger import (
    AccountFrozen,
    Book,
    InvalidTransfer,
    LedgerError,
    Overdraft,
    PendingAlreadyResolved,
    Transfer,
    TransferCode,
    audit,
    policy_for,
)
from workers.database import make_engine, migrate

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ACCOUNTS = [
    "escrow:a",
    "escrow:b",
    "payout:u1",
    "user:u1",
    "user:u2",
    "platform:fees",
    "external:card",
]
CURRENCIES = ["USD", "EUR"]
NON_NEGATIVE = [name for name in ACCOUNTS if not policy_for(name).may_go_negative]


@dataclass(frozen=True)
class Post:
    legs: list[tuple[tuple[str, str], int]]
    currency: str


@dataclass(frozen=True)
class Hold:
    pair: tuple[str, str]
    amount: int
    currency: str


@dataclass(frozen=True)
class Resolve:
    hold: int  # which hold made so far (modulo their number)
    void: bool
    share: float | None  # part of the hold to post; None posts all; > 1 asks for too much


@dataclass(frozen=True)
class Freeze:
    name: str
    currency: str
    frozen: bool


Operation = Post | Hold | Resolve | Freeze

pairs = st.lists(st.sampled_from(ACCOUNTS), min_size=2, max_size=2, unique=True).map(tuple)
amounts = st.integers(min_value=1, max_value=5_000)
currencies = st.sampled_from(CURRENCIES)
operations: st.SearchStrategy[Operation] = st.one_of(
    st.builds(Post, st.lists(st.tuples(pairs, amounts), min_size=1, max_size=3), currencies),
    # Money in from the card, so that non-negative accounts have something to spend.
    st.builds(
        lambda name, amount, currency: Post([(("external:card", name), amount)], currency),
        st.sampled_from(NON_NEGATIVE),
        amounts,
        currencies,
    ),
    st.builds(Hold, pairs, amounts, currencies),
    st.builds(Resolve, st.integers(0, 20), st.booleans(), st.none() | st.floats(0.0, 1.2)),
    st.builds(Freeze, st.sampled_from(ACCOUNTS), currencies, st.booleans()),
)


@dataclass
class Model:
    """What the book should hold: (name, currency) -> [posted, pending debits, pending credits]."""

    totals: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    frozen: set[tuple[str, str]] = field(default_factory=set)
    holds: list[tuple[Transfer, bool]] = field(default_factory=list)  # (hold, resolved)

    def of(self, name: str, currency: str) -> list[int]:
        return self.totals.setdefault((name, currency), [0, 0, 0])

    def copy(self) -> Model:
        totals = {key: list(value) for key, value in self.totals.items()}
        return Model(totals, set(self.frozen), list(self.holds))

    def refusal(self, transfer: Transfer) -> type[LedgerError] | None:
        if {(transfer.debit, transfer.currency), (transfer.credit, transfer.currency)} & (
            self.frozen
        ):
            return AccountFrozen
        posted, pending_debits, _ = self.of(transfer.debit, transfer.currency)
        if (
            not policy_for(transfer.debit).may_go_negative
            and posted - pending_debits < transfer.amount_minor
        ):
            return Overdraft
        return None

    def move(self, transfer: Transfer, *, pending: bool) -> None:
        debit = self.of(transfer.debit, transfer.currency)
        credit = self.of(transfer.credit, transfer.currency)
        if pending:
            debit[1] += transfer.amount_minor
            credit[2] += transfer.amount_minor
        else:
            debit[0] -= transfer.amount_minor
            credit[0] += transfer.amount_minor


def make(transfer_id: str, debit: str, credit: str, amount: int, currency: str) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        debit=debit,
        credit=credit,
        amount_minor=amount,
        currency=currency,
        code=TransferCode.CORRECTION,
        event_id=f"evt-{transfer_id}",
        occurred_at=AT,
    )


def plan(
    book: Book, model: Model, number: int, operation: Operation
) -> tuple[Callable[[], None], Model | type[LedgerError]]:
    """The call to make on the book, and either the model after it or the refusal expected."""
    after = model.copy()
    tag = f"op{number}"
    match operation:
        case Post(legs, currency):
            batch = [
                make(f"{tag}.{index}", debit, credit, amount, currency)
                for index, ((debit, credit), amount) in enumerate(legs)
            ]
            for transfer in batch:
                refused = after.refusal(transfer)
                if refused:
                    return (lambda: book.post(batch)), refused
                after.move(transfer, pending=False)
            return (lambda: book.post(batch)), after
        case Hold((debit, credit), amount, currency):
            hold = make(tag, debit, credit, amount, currency)
            refused = after.refusal(hold)
            after.move(hold, pending=True)
            after.holds.append((hold, False))
            return (lambda: book.hold(hold)), refused or after
        case Resolve(index, void, share):
            if not model.holds:
                return (lambda: None), after
            held, resolved = model.holds[index % len(model.holds)]
            whole = held.amount_minor
            amount = whole if void or share is None else round(whole * share)
            if void:
                call = lambda: book.void_pending(  # noqa: E731
                    held.transfer_id, transfer_id=tag, event_id="e", occurred_at=AT
                )
            else:
                call = lambda: book.post_pending(  # noqa: E731
                    held.transfer_id,
                    transfer_id=tag,
                    event_id="e",
                    occurred_at=AT,
                    amount_minor=None if share is None else amount,
                )
            if not 0 < amount <= whole:
                return call, InvalidTransfer
            if resolved:
                return call, PendingAlreadyResolved
            if {(held.debit, held.currency), (held.credit, held.currency)} & model.frozen:
                return call, AccountFrozen
            posted = 0 if void else amount
            payer = after.of(held.debit, held.currency)
            payee = after.of(held.credit, held.currency)
            payer[0], payer[1] = payer[0] - posted, payer[1] - whole
            payee[0], payee[2] = payee[0] + posted, payee[2] - whole
            after.holds[index % len(model.holds)] = (held, True)
            return call, after
        case Freeze(name, currency, frozen):
            if frozen:
                after.frozen.add((name, currency))
                return (lambda: book.freeze(name, currency)), after
            after.frozen.discard((name, currency))
            return (lambda: book.unfreeze(name, currency)), after
    raise AssertionError(operation)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated database for every example; each example rolls its transaction back."""
    path: Path = tmp_path_factory.mktemp("ledger-properties") / "ledger.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield engine
    engine.dispose()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(operations, min_size=1, max_size=30))
def test_any_sequence_keeps_the_books_balanced_and_never_overdraws(
    engine: Engine, sequence: list[Operation]
) -> None:
    model = Model()
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            book = Book(conn)
            for number, operation in enumerate(sequence):
                call, outcome = plan(book, model, number, operation)
                if isinstance(outcome, Model):
                    call()
                    model = outcome
                else:
                    with pytest.raises(outcome):
                        call()
                check(conn, book, model)
        finally:
            transaction.rollback()


def check(conn: Connection, book: Book, model: Model) -> None:
    report = audit(conn)
    assert report.ok, report.problems
    for (name, currency), (posted, pending_debits, pending_credits) in model.totals.items():
        balance = book.balance(name, currency)
        assert (balance.posted_minor, balance.pending_debits_minor) == (posted, pending_debits)
        assert balance.pending_credits_minor == pending_credits
        assert book.is_frozen(name, currency) == ((name, currency) in model.frozen)
    for name in NON_NEGATIVE:
        for currency in CURRENCIES:
            assert book.balance(name, currency).available_minor >= 0
