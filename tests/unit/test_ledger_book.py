"""The Book on SQLite: what posting, holds, freezes and reads do to balances and entries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, func, select

from ledger import (
    AccountFrozen,
    Balance,
    Book,
    CurrencyMismatch,
    InvalidTransfer,
    Overdraft,
    PendingAlreadyResolved,
    PendingNotFound,
    Transfer,
    TransferCode,
    TransferKind,
    audit,
)
from ledger.tables import SHARD_COUNT, accounts, balances, transfers

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def transfer(
    transfer_id: str,
    debit: str,
    credit: str,
    amount_minor: int,
    *,
    currency: str = "USD",
    code: TransferCode = TransferCode.FUNDING,
    occurred_at: datetime = AT,
) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        debit=debit,
        credit=credit,
        amount_minor=amount_minor,
        currency=currency,
        code=code,
        event_id=f"evt-{transfer_id}",
        occurred_at=occurred_at,
    )


@pytest.fixture
def conn(sqlite_engine: Engine) -> Iterator[Connection]:
    with sqlite_engine.connect() as connection, connection.begin():
        yield connection


@pytest.fixture
def book(conn: Connection) -> Book:
    return Book(conn)


def fund(book: Book, milestone: str = "m1", amount_minor: int = 10_000) -> None:
    book.post([transfer(f"fund-{milestone}", "external:card", f"escrow:{milestone}", amount_minor)])


def test_a_posted_transfer_is_credits_minus_debits_from_each_owners_side(
    book: Book, conn: Connection
) -> None:
    fund(book)
    book.post([transfer("rel", "escrow:m1", "user:u2", 9_200, code=TransferCode.RELEASE)])

    assert book.balance("escrow:m1", "USD") == Balance(800, 0, 0)
    assert book.balance("user:u2", "USD").available_minor == 9_200
    assert book.balance("external:card", "USD").available_minor == -10_000
    assert audit(conn).ok


def test_an_account_that_never_moved_reads_zero(book: Book) -> None:
    assert book.balance("user:nobody", "USD") == Balance(0, 0, 0)
    assert book.entries("user:nobody", "USD") == []
    assert not book.is_frozen("escrow:nothing", "USD")


def test_escrow_cannot_pay_out_more_than_was_funded(book: Book) -> None:
    fund(book, amount_minor=10_000)

    with pytest.raises(Overdraft) as refused:
        book.post([transfer("rel", "escrow:m1", "user:u2", 10_001)])

    assert (refused.value.name, refused.value.currency) == ("escrow:m1", "USD")
    assert (refused.value.balance, refused.value.amount) == (10_000, 10_001)
    assert book.balance("escrow:m1", "USD").available_minor == 10_000


def test_a_user_may_go_negative_and_owe_the_platform(book: Book) -> None:
    book.post([transfer("claw", "user:u2", "user:u1", 4_600, code=TransferCode.CLAWBACK)])

    assert book.balance("user:u2", "USD").available_minor == -4_600


def test_a_batch_is_judged_in_order_so_it_may_spend_what_it_funds_first(book: Book) -> None:
    book.post(
        [
            transfer("fund", "external:card", "escrow:m1", 5_000),
            transfer("rel", "escrow:m1", "user:u2", 5_000, code=TransferCode.RELEASE),
        ]
    )

    assert book.balance("escrow:m1", "USD").available_minor == 0
    assert book.balance("user:u2", "USD").available_minor == 5_000


def test_a_batch_is_judged_in_order_so_it_cannot_spend_before_funding(book: Book) -> None:
    with pytest.raises(Overdraft):
        book.post(
            [
                transfer("rel", "escrow:m1", "user:u2", 5_000, code=TransferCode.RELEASE),
                transfer("fund", "external:card", "escrow:m1", 5_000),
            ]
        )


def test_each_currency_has_its_own_account_under_one_name(book: Book) -> None:
    book.post([transfer("usd", "external:card", "user:u1", 100)])
    book.post([transfer("eur", "external:card", "user:u1", 70, currency="EUR")])

    assert book.balance("user:u1", "USD").available_minor == 100
    assert book.balance("user:u1", "EUR").available_minor == 70
    assert book.balances()["user:u1"] == {"USD": 100, "EUR": 70}


def test_points_in_a_money_account_are_a_currency_mismatch(book: Book) -> None:
    with pytest.raises(CurrencyMismatch):
        book.post([transfer("p", "platform:points", "user:u1", 10, currency="PTS")])


def test_a_frozen_account_refuses_money_in_and_out_until_unfrozen(book: Book) -> None:
    fund(book)
    book.freeze("escrow:m1", "USD")

    assert book.is_frozen("escrow:m1", "USD")
    with pytest.raises(AccountFrozen) as out:
        book.post([transfer("rel", "escrow:m1", "user:u2", 100)])
    assert out.value.name == "escrow:m1"
    with pytest.raises(AccountFrozen):
        book.post([transfer("more", "external:card", "escrow:m1", 100)])
    with pytest.raises(AccountFrozen):
        book.hold(transfer("hold", "escrow:m1", "user:u2", 100))

    book.unfreeze("escrow:m1", "USD")
    book.post([transfer("rel", "escrow:m1", "user:u2", 100)])
    assert book.balance("escrow:m1", "USD").available_minor == 9_900


def test_an_account_frozen_before_any_entry_opens_frozen_and_is_not_reported(book: Book) -> None:
    book.freeze("escrow:m9", "USD")

    with pytest.raises(AccountFrozen):
        fund(book, "m9")
    assert "escrow:m9" not in book.balances()


def test_a_frozen_account_refuses_posting_and_voiding_its_holds(book: Book) -> None:
    fund(book)
    book.hold(transfer("h", "escrow:m1", "user:u2", 1_000))
    book.freeze("escrow:m1", "USD")

    with pytest.raises(AccountFrozen):
        book.post_pending("h", transfer_id="h-post", event_id="e", occurred_at=AT)
    with pytest.raises(AccountFrozen):
        book.void_pending("h", transfer_id="h-void", event_id="e", occurred_at=AT)


def test_balances_lists_every_account_with_an_entry_zero_included(book: Book) -> None:
    fund(book)
    book.post([transfer("rel", "escrow:m1", "user:u2", 10_000, code=TransferCode.RELEASE)])

    assert book.balances() == {
        "external:card": {"USD": -10_000},
        "escrow:m1": {"USD": 0},
        "user:u2": {"USD": 10_000},
    }


def test_entries_list_the_accounts_transfers_by_event_time(book: Book) -> None:
    later = AT + timedelta(days=1)
    book.post([transfer("second", "external:card", "escrow:m1", 300, occurred_at=later)])
    book.post([transfer("first", "external:card", "escrow:m1", 500)])
    book.post([transfer("out", "escrow:m1", "user:u2", 200, occurred_at=later)])

    entries = book.entries("escrow:m1", "USD")

    assert [entry.transfer_id for entry in entries] == ["first", "second", "out"]
    assert [entry.posted_change_minor("escrow:m1") for entry in entries] == [500, 300, -200]
    assert entries[0].occurred_at == AT and entries[0].event_id == "evt-first"


def test_a_hot_account_spreads_its_balance_over_shard_rows_and_reads_their_sum(
    book: Book, conn: Connection
) -> None:
    for number in range(40):
        book.post([transfer(f"fee-{number}", "external:card", "platform:fees", 10)])

    rows = conn.execute(
        select(balances.c.shard, balances.c.posted_credits)
        .join(accounts, accounts.c.id == balances.c.account_id)
        .where(accounts.c.name == "platform:fees")
    ).all()
    assert len(rows) == SHARD_COUNT
    assert sum(1 for row in rows if row.posted_credits) > 1
    assert book.balance("platform:fees", "USD").available_minor == 400
    assert book.balances()["platform:fees"] == {"USD": 400}


def test_a_hold_reserves_the_amount_on_both_sides(book: Book) -> None:
    fund(book)
    book.hold(transfer("h", "escrow:m1", "payout:u2", 4_000, code=TransferCode.WITHDRAWAL))

    assert book.balance("escrow:m1", "USD") == Balance(10_000, 4_000, 0)
    assert book.balance("escrow:m1", "USD").available_minor == 6_000
    assert book.balance("payout:u2", "USD") == Balance(0, 0, 4_000)
    with pytest.raises(Overdraft):
        book.post([transfer("rel", "escrow:m1", "user:u2", 6_001)])


def test_a_hold_cannot_reserve_more_than_is_available(book: Book) -> None:
    fund(book, amount_minor=1_000)
    book.hold(transfer("h1", "escrow:m1", "user:u2", 600))

    with pytest.raises(Overdraft):
        book.hold(transfer("h2", "escrow:m1", "user:u2", 401))


def test_posting_a_whole_hold_moves_it(book: Book) -> None:
    fund(book)
    book.hold(transfer("h", "escrow:m1", "user:u2", 4_000, code=TransferCode.RELEASE))
    book.post_pending("h", transfer_id="h-post", event_id="e2", occurred_at=AT)

    assert book.balance("escrow:m1", "USD") == Balance(6_000, 0, 0)
    assert book.balance("user:u2", "USD") == Balance(4_000, 0, 0)
    posted = book.entries("user:u2", "USD")[-1]
    assert (posted.kind, posted.pending_id, posted.code) == (
        TransferKind.POST_PENDING,
        "h",
        TransferCode.RELEASE,
    )


def test_posting_part_of_a_hold_returns_the_rest_to_the_debit_account(
    book: Book, conn: Connection
) -> None:
    fund(book)
    book.hold(transfer("h", "escrow:m1", "user:u2", 4_000))
    book.post_pending("h", transfer_id="h-post", event_id="e2", occurred_at=AT, amount_minor=1_500)

    assert book.balance("escrow:m1", "USD") == Balance(8_500, 0, 0)
    assert book.balance("user:u2", "USD") == Balance(1_500, 0, 0)
    assert audit(conn).ok


def test_voiding_a_hold_releases_all_of_it(book: Book, conn: Connection) -> None:
    fund(book)
    book.hold(transfer("h", "escrow:m1", "user:u2", 4_000))
    book.void_pending("h", transfer_id="h-void", event_id="e2", occurred_at=AT)

    assert book.balance("escrow:m1", "USD") == Balance(10_000, 0, 0)
    assert book.balance("user:u2", "USD") == Balance(0, 0, 0)
    assert audit(conn).ok


def test_a_hold_on_hot_accounts_resolves_in_its_own_shard(book: Book, conn: Connection) -> None:
    book.hold(transfer("h", "external:card", "platform:fees", 700))
    book.post_pending("h", transfer_id="h-post", event_id="e", occurred_at=AT, amount_minor=300)

    assert book.balance("platform:fees", "USD") == Balance(300, 0, 0)
    assert conn.scalar(select(func.min(balances.c.pending_credits))) == 0
    assert audit(conn).ok


def test_a_hold_is_resolved_once(book: Book) -> None:
    fund(book)
    book.hold(transfer("h", "escrow:m1", "user:u2", 4_000))
    book.post_pending("h", transfer_id="h-post", event_id="e2", occurred_at=AT, amount_minor=1)

    with pytest.raises(PendingAlreadyResolved):
        book.post_pending("h", transfer_id="h-post-2", event_id="e3", occurred_at=AT)
    with pytest.raises(PendingAlreadyResolved):
        book.void_pending("h", transfer_id="h-void", event_id="e3", occurred_at=AT)


def test_posting_more_than_was_held_is_invalid(book: Book) -> None:
    fund(book)
    book.hold(transfer("h", "escrow:m1", "user:u2", 4_000))

    with pytest.raises(InvalidTransfer):
        book.post_pending("h", transfer_id="p", event_id="e", occurred_at=AT, amount_minor=4_001)
    with pytest.raises(InvalidTransfer):
        book.post_pending("h", transfer_id="p", event_id="e", occurred_at=AT, amount_minor=0)


def test_only_a_pending_transfer_can_be_posted_or_voided(book: Book) -> None:
    fund(book)

    with pytest.raises(PendingNotFound):
        book.post_pending("missing", transfer_id="p", event_id="e", occurred_at=AT)
    with pytest.raises(PendingNotFound):
        book.void_pending("fund-m1", transfer_id="v", event_id="e", occurred_at=AT)


def test_a_refused_movement_leaves_the_callers_earlier_writes_and_transaction_alive(
    book: Book, conn: Connection
) -> None:
    fund(book)
    with pytest.raises(Overdraft):
        book.post([transfer("too-much", "escrow:m1", "user:u2", 99_999)])

    book.post([transfer("rel", "escrow:m1", "user:u2", 1_000)])
    assert book.balance("escrow:m1", "USD").available_minor == 9_000
    assert conn.scalar(select(func.count()).select_from(transfers)) == 2


def test_the_ledger_never_commits_the_callers_transaction(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        outer = conn.begin()
        Book(conn).post([transfer("fund", "external:card", "escrow:m1", 10_000)])
        outer.rollback()

    with sqlite_engine.connect() as conn, conn.begin():
        assert conn.scalar(select(func.count()).select_from(transfers)) == 0
        assert conn.scalar(select(func.count()).select_from(accounts)) == 0


def test_threads_racing_on_one_sqlite_file_spend_escrow_exactly_once_without_lock_errors(
    sqlite_engine: Engine,
) -> None:
    """The embedded mode runs worker threads on one SQLite file: each transaction must wait its
    turn (not fail with "database is locked") and escrow must still never overdraw."""
    with sqlite_engine.begin() as conn:
        Book(conn).post([transfer("fund", "external:card", "escrow:m1", 20_000)])
    outcomes: list[str] = []

    def spend(worker: int) -> None:
        for attempt in range(5):
            try:
                with sqlite_engine.begin() as conn:
                    Book(conn).post(
                        [transfer(f"s{worker}-{attempt}", "escrow:m1", f"user:u{worker}", 1_000)]
                    )
                outcomes.append("spent")
            except Overdraft:
                outcomes.append("refused")

    threads = [threading.Thread(target=spend, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["refused"] * 20 + ["spent"] * 20
    with sqlite_engine.begin() as conn:
        assert Book(conn).balance("escrow:m1", "USD").available_minor == 0
        assert audit(conn).ok


def traced(conn: Connection) -> list[str]:
    """Every statement SQLite runs on `conn` from now on."""
    seen: list[str] = []
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    dbapi_connection.set_trace_callback(seen.append)
    return seen


def test_a_posting_between_existing_accounts_with_a_lock_takes_no_savepoint(
    conn: Connection, book: Book
) -> None:
    book.post([transfer("fund", "external:card", "escrow:m1", 5_000)])
    book.hold(transfer("h", "escrow:m1", "user:u1", 1_000))
    statements = traced(conn)

    book.post([transfer("release", "escrow:m1", "user:u1", 2_000)])
    book.post_pending("h", transfer_id="p", event_id="e", occurred_at=AT)

    assert not [sql for sql in statements if "SAVEPOINT" in sql], statements
    assert book.balance("user:u1", "USD").available_minor == 3_000


def test_postings_that_open_accounts_or_join_two_hot_ones_take_a_savepoint(
    conn: Connection, book: Book
) -> None:
    book.post([transfer("open", "external:card", "platform:fees", 1)])
    statements = traced(conn)

    book.post([transfer("new", "external:card", "escrow:m9", 100)])
    opening = [sql for sql in statements if sql.startswith("SAVEPOINT")]
    book.post([transfer("hot", "external:card", "platform:fees", 100)])

    assert opening == ["SAVEPOINT recourse_book"]
    assert [sql for sql in statements if sql.startswith("SAVEPOINT")] == [
        "SAVEPOINT recourse_book"
    ] * 2


def test_a_refusal_without_a_savepoint_writes_nothing_and_the_transaction_goes_on(
    conn: Connection, book: Book
) -> None:
    book.post([transfer("fund", "external:card", "escrow:m1", 500)])
    book.post([transfer("open", "external:card", "user:u1", 1)])
    before = conn.scalar(select(func.count()).select_from(transfers))

    with pytest.raises(Overdraft):
        book.post(
            [
                transfer("ok", "escrow:m1", "user:u1", 400),
                transfer("too-much", "escrow:m1", "user:u1", 400),
            ]
        )
    book.freeze("user:u1", "USD")
    with pytest.raises(AccountFrozen):
        book.post([transfer("frozen", "escrow:m1", "user:u1", 100)])

    assert conn.scalar(select(func.count()).select_from(transfers)) == before
    assert book.balance("escrow:m1", "USD").available_minor == 500
    assert audit(conn).ok


def test_an_account_that_lost_its_balance_row_is_refused_not_posted_to(
    conn: Connection, book: Book
) -> None:
    book.post([transfer("fund", "external:card", "escrow:m1", 500)])
    book.post([transfer("open", "external:card", "user:u1", 1)])
    user_id = conn.scalar(select(accounts.c.id).where(accounts.c.name == "user:u1"))
    conn.execute(balances.delete().where(balances.c.account_id == user_id))

    with pytest.raises(RuntimeError, match="no balance row"):
        book.post([transfer("release", "escrow:m1", "user:u1", 100)])
