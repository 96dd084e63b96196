"""Idempotency and atomicity: a transfer id moves money once, and a batch posts whole or not at
all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, Engine, func, select

from ledger import (
    Book,
    InvalidTransfer,
    Overdraft,
    PendingAlreadyResolved,
    Transfer,
    TransferCode,
    TransferConflict,
    audit,
)
from ledger.tables import accounts, balances, transfers

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FUND = Transfer(
    transfer_id="evt-1#1",
    debit="external:card",
    credit="escrow:m1",
    amount_minor=10_000,
    currency="USD",
    code=TransferCode.FUNDING,
    event_id="evt-1",
    occurred_at=AT,
)
FEE = replace(FUND, transfer_id="evt-1#2", credit="platform:fees", amount_minor=400)


@pytest.fixture
def conn(sqlite_engine: Engine) -> Iterator[Connection]:
    with sqlite_engine.connect() as connection, connection.begin():
        yield connection


def snapshot(conn: Connection) -> tuple[object, ...]:
    """Everything the ledger stores, to show a refused call changed nothing."""
    return (
        conn.execute(select(accounts).order_by(accounts.c.id)).all(),
        conn.execute(select(balances).order_by(balances.c.account_id, balances.c.shard)).all(),
        conn.execute(select(transfers).order_by(transfers.c.id)).all(),
    )


def test_posting_the_same_transfer_again_changes_nothing(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND, FEE])
    before = snapshot(conn)

    book.post([FUND, FEE])
    book.post([FEE])

    assert snapshot(conn) == before
    assert book.balance("escrow:m1", "USD").available_minor == 10_000


def test_the_same_instant_in_another_offset_is_the_same_transfer(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND])

    book.post([replace(FUND, occurred_at=AT.astimezone(timezone(timedelta(hours=2))))])

    assert conn.scalar(select(func.count()).select_from(transfers)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"amount_minor": 10_001},
        {"debit": "external:bank"},
        {"credit": "escrow:m2"},
        {"currency": "EUR"},
        {"code": TransferCode.CORRECTION},
        {"event_id": "evt-2"},
        {"occurred_at": AT + timedelta(microseconds=1)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_same_id_with_any_other_field_is_a_conflict(
    conn: Connection, change: dict[str, object]
) -> None:
    book = Book(conn)
    book.post([FUND])
    before = snapshot(conn)

    with pytest.raises(TransferConflict) as conflict:
        book.post([replace(FUND, **change)])  # type: ignore[arg-type]

    assert conflict.value.transfer_id == FUND.transfer_id
    assert snapshot(conn) == before


def test_the_same_id_twice_in_one_batch_posts_once_or_conflicts(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND, FUND])
    assert book.balance("escrow:m1", "USD").available_minor == 10_000

    with pytest.raises(TransferConflict):
        book.post([FEE, replace(FEE, amount_minor=1)])


def test_a_posted_id_cannot_come_back_as_a_hold(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND])

    with pytest.raises(TransferConflict):
        book.hold(FUND)


def test_a_batch_with_one_failing_transfer_leaves_nothing_behind(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND])
    before = snapshot(conn)

    with pytest.raises(Overdraft):
        book.post(
            [
                replace(FEE, transfer_id="evt-2#1", debit="external:card"),
                replace(FUND, transfer_id="evt-2#2", debit="external:card", credit="escrow:m7"),
                replace(FUND, transfer_id="evt-2#3", debit="escrow:m1", credit="user:u2"),
                replace(FUND, transfer_id="evt-2#4", debit="escrow:m1", credit="user:u3"),
            ]
        )

    assert snapshot(conn) == before  # no transfer, no balance change, no new account
    assert audit(conn).ok


def test_a_batch_with_an_invalid_transfer_is_refused_before_anything_is_written(
    conn: Connection,
) -> None:
    book = Book(conn)
    before = snapshot(conn)

    with pytest.raises(InvalidTransfer):
        book.post([FUND, replace(FEE, transfer_id="evt-1#3", amount_minor=0)])

    assert snapshot(conn) == before


def test_holding_the_same_transfer_again_changes_nothing(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND])
    hold = replace(FUND, transfer_id="h", debit="escrow:m1", credit="user:u2", amount_minor=3_000)
    book.hold(hold)
    before = snapshot(conn)

    book.hold(hold)

    assert snapshot(conn) == before


def test_posting_a_hold_again_under_the_same_id_changes_nothing(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND])
    book.hold(replace(FUND, transfer_id="h", debit="escrow:m1", credit="user:u2"))
    book.post_pending("h", transfer_id="h-post", event_id="e", occurred_at=AT)
    before = snapshot(conn)

    book.post_pending("h", transfer_id="h-post", event_id="e", occurred_at=AT)
    # "All of it" and the same amount spelt out are the same posting.
    book.post_pending("h", transfer_id="h-post", event_id="e", occurred_at=AT, amount_minor=10_000)

    assert snapshot(conn) == before


def test_posting_a_hold_again_with_other_fields_is_a_conflict(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND])
    book.hold(replace(FUND, transfer_id="h", debit="escrow:m1", credit="user:u2"))
    book.post_pending("h", transfer_id="h-post", event_id="e", occurred_at=AT, amount_minor=10)

    with pytest.raises(TransferConflict):
        book.post_pending("h", transfer_id="h-post", event_id="e", occurred_at=AT, amount_minor=20)
    with pytest.raises(TransferConflict):
        book.void_pending("h", transfer_id="h-post", event_id="e", occurred_at=AT)
    with pytest.raises(PendingAlreadyResolved):
        book.void_pending("h", transfer_id="h-void", event_id="e", occurred_at=AT)


def test_voiding_a_hold_again_under_the_same_id_changes_nothing(conn: Connection) -> None:
    book = Book(conn)
    book.post([FUND])
    book.hold(replace(FUND, transfer_id="h", debit="escrow:m1", credit="user:u2"))
    book.void_pending("h", transfer_id="h-void", event_id="e", occurred_at=AT)
    before = snapshot(conn)

    book.void_pending("h", transfer_id="h-void", event_id="e", occurred_at=AT)

    assert snapshot(conn) == before
