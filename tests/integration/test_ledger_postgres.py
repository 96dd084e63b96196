"""The ledger on PostgreSQL: the database's own guards (shown with raw SQL that bypasses the
Python code), row locks under real concurrency, and the hot-account shards."""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

import ledger.balances as balances_module
import store.prepared as prepared_module
from ledger import (
    AccountFrozen,
    Book,
    Overdraft,
    PendingAlreadyResolved,
    Transfer,
    TransferCode,
    TransferConflict,
    audit,
)
from ledger.tables import SHARD_COUNT, balances, metadata, transfers
from workers.database import alembic_config

pytestmark = pytest.mark.postgres

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def transfer(
    transfer_id: str, debit: str, credit: str, amount_minor: int, currency: str = "USD"
) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        debit=debit,
        credit=credit,
        amount_minor=amount_minor,
        currency=currency,
        code=TransferCode.FUNDING,
        event_id=f"evt-{transfer_id}",
        occurred_at=AT,
    )


def seed(engine: Engine) -> None:
    """escrow:m1 funded 10000 USD; 1000 released; hold h (3000) open; hold h0 (500) posted."""
    with engine.begin() as conn:
        book = Book(conn)
        book.post(
            [
                transfer("fund", "external:card", "escrow:m1", 10_000),
                transfer("rel", "escrow:m1", "user:u2", 1_000),
                transfer("eur", "external:card", "user:u2", 500, currency="EUR"),
                transfer("u3", "external:card", "user:u3", 1),
            ]
        )
        book.hold(transfer("h", "escrow:m1", "user:u2", 3_000))
        book.hold(transfer("h0", "escrow:m1", "user:u2", 500))
        book.post_pending("h0", transfer_id="h0-post", event_id="e", occurred_at=AT)


def account(name: str, currency: str = "USD") -> str:
    return f"(SELECT id FROM ledger_accounts WHERE name = '{name}' AND currency = '{currency}')"


def row_id(transfer_id: str) -> str:
    return f"(SELECT id FROM ledger_transfers WHERE transfer_id = '{transfer_id}')"


def insert_transfer(
    transfer_id: str,
    *,
    debit: str = account("escrow:m1"),
    credit: str = account("user:u2"),
    amount: int = 100,
    currency: str = "USD",
    kind: str = "posted",
    pending: str = "NULL",
) -> str:
    return (
        "INSERT INTO ledger_transfers (transfer_id, kind, debit_account_id, credit_account_id,"
        " amount_minor, currency, code, event_id, occurred_at, pending_id) VALUES"
        f" ('{transfer_id}', '{kind}', {debit}, {credit}, {amount}, '{currency}',"
        f" 'correction', 'evt-raw', now(), {pending})"
    )


def assert_refused(engine: Engine, sql: str, guard: str) -> None:
    """The statement fails in the database, and the error names the guard that stopped it."""
    with pytest.raises(IntegrityError) as refused, engine.begin() as conn:
        conn.execute(text(sql))
    assert guard in str(refused.value)


def test_the_migrated_postgresql_schema_matches_the_tables_module(pg_engine: Engine) -> None:
    """Also after the ledger branch is downgraded (triggers and all) and upgraded again."""

    def ledger_only(name: str | None, type_: str, _parent: object) -> bool:
        return type_ != "table" or (name or "").startswith("ledger_")

    def differences() -> list[Any]:
        with pg_engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": ledger_only}
            )
            return list(compare_metadata(context, metadata))

    assert differences() == []
    config = alembic_config(pg_engine)
    command.downgrade(config, "ledger@base")
    command.upgrade(config, "heads")
    assert differences() == []
    seed(pg_engine)
    assert_refused(pg_engine, "DELETE FROM ledger_transfers", "immutable")


def test_the_database_refuses_amounts_not_above_zero_and_self_transfers(
    pg_engine: Engine,
) -> None:
    seed(pg_engine)
    amount_guard = "ck_ledger_transfers_amount_positive"
    assert_refused(pg_engine, insert_transfer("zero", amount=0), amount_guard)
    assert_refused(pg_engine, insert_transfer("minus", amount=-5), amount_guard)
    assert_refused(
        pg_engine,
        insert_transfer("self", credit=account("escrow:m1")),
        "ck_ledger_transfers_two_accounts",
    )


def test_the_database_refuses_a_transfer_between_currencies(pg_engine: Engine) -> None:
    seed(pg_engine)
    assert_refused(
        pg_engine,
        insert_transfer("usd-to-eur", credit=account("user:u2", "EUR")),
        "fk_ledger_transfers_credit_currency",
    )
    assert_refused(
        pg_engine,
        insert_transfer("labelled-eur", credit=account("user:u2", "EUR"), currency="EUR"),
        "fk_ledger_transfers_debit_currency",
    )


def test_the_database_refuses_a_negative_balance_where_the_account_flag_forbids_it(
    pg_engine: Engine,
) -> None:
    seed(pg_engine)
    escrow = f"account_id = {account('escrow:m1')}"
    # posted 10000 - 1000 - 500 = 8500, of which 3000 is held: 5500 available.
    assert_refused(
        pg_engine,
        f"UPDATE ledger_balances SET posted_debits = posted_debits + 5501 WHERE {escrow}",
        "ck_ledger_balances_not_negative",
    )
    assert_refused(
        pg_engine,
        f"UPDATE ledger_balances SET pending_debits = pending_debits + 5501 WHERE {escrow}",
        "ck_ledger_balances_not_negative",
    )
    # Nor can the row, or the account, drop the flag to get around the check.
    assert_refused(
        pg_engine,
        f"UPDATE ledger_balances SET may_go_negative = true WHERE {escrow}",
        "fk_ledger_balances_account_flags",
    )
    assert_refused(
        pg_engine,
        "UPDATE ledger_accounts SET may_go_negative = true WHERE name = 'escrow:m1'",
        "fk_ledger_balances_account_flags",
    )
    assert_refused(
        pg_engine,
        "INSERT INTO ledger_accounts (name, currency, may_go_negative, hot, frozen)"
        " VALUES ('platform:x', 'USD', false, true, false)",
        "ck_ledger_accounts_hot_may_go_negative",
    )
    with pg_engine.begin() as conn:
        assert Book(conn).balance("escrow:m1", "USD").available_minor == 5_500
        assert audit(conn).ok


def test_transfers_are_immutable_on_postgresql(pg_engine: Engine) -> None:
    seed(pg_engine)
    assert_refused(
        pg_engine,
        "UPDATE ledger_transfers SET amount_minor = 1 WHERE transfer_id = 'rel'",
        "immutable",
    )
    assert_refused(pg_engine, "DELETE FROM ledger_transfers WHERE transfer_id = 'rel'", "immutable")
    assert_refused(pg_engine, "TRUNCATE ledger_transfers CASCADE", "immutable")
    with pg_engine.begin() as conn:
        assert conn.scalar(select(func.count()).select_from(transfers)) == 7


def test_the_database_resolves_a_hold_once_within_its_amount_and_accounts(
    pg_engine: Engine,
) -> None:
    seed(pg_engine)
    assert_refused(
        pg_engine,
        insert_transfer("again", kind="void_pending", amount=500, pending=row_id("h0")),
        "uq_ledger_transfers_pending_id",
    )
    assert_refused(
        pg_engine,
        insert_transfer("greedy", kind="post_pending", amount=3_001, pending=row_id("h")),
        "moves 3001 of a hold of 3000",
    )
    assert_refused(
        pg_engine,
        insert_transfer("half-void", kind="void_pending", amount=1, pending=row_id("h")),
        "moves 1 of a hold of 3000",
    )
    assert_refused(
        pg_engine,
        insert_transfer("not-a-hold", kind="post_pending", amount=1, pending=row_id("rel")),
        "which is not pending",
    )
    assert_refused(
        pg_engine,
        insert_transfer(
            "elsewhere", kind="post_pending", credit=account("user:u3"), pending=row_id("h")
        ),
        "fk_ledger_transfers_pending_accounts",
    )
    assert_refused(
        pg_engine,
        insert_transfer("posted-with-hold", pending=row_id("h")),
        "ck_ledger_transfers_kind",
    )


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # the test inspects every outcome, refusals included
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_twenty_threads_racing_to_spend_one_escrow_spend_exactly_what_was_funded(
    pg_engine: Engine,
) -> None:
    with pg_engine.begin() as conn:
        Book(conn).post([transfer("fund", "external:card", "escrow:m1", 10_000)])

    def spend(index: int) -> str:
        with pg_engine.begin() as conn:
            Book(conn).post([transfer(f"spend-{index}", "escrow:m1", f"user:u{index}", 1_000)])
        return "spent"

    outcomes = race(20, spend)

    assert outcomes.count("spent") == 10
    assert all(isinstance(o, Overdraft) for o in outcomes if o != "spent"), outcomes
    with pg_engine.begin() as conn:
        book = Book(conn)
        assert book.balance("escrow:m1", "USD").available_minor == 0
        paid = [book.balance(f"user:u{index}", "USD").available_minor for index in range(20)]
        assert sum(paid) == 10_000
        report = audit(conn)
        assert report.ok, report.problems


def test_racing_copies_of_one_transfer_post_it_once(pg_engine: Engine) -> None:
    """Each copy sees nothing at first; the unique transfer id makes all but one wait, fail, and
    find the winner on a second pass: a no-op for them, not an error."""
    with pg_engine.begin() as conn:
        Book(conn).post([transfer("open", "external:card", "platform:fees", 1)])
    fee = transfer("fee", "external:card", "platform:fees", 400)

    def post(_index: int) -> str:
        with pg_engine.begin() as conn:
            Book(conn).post([fee])
        return "ok"

    assert race(10, post) == ["ok"] * 10
    with pg_engine.begin() as conn:
        assert Book(conn).balance("platform:fees", "USD").available_minor == 401
        assert conn.scalar(select(func.count()).select_from(transfers)) == 2


def assert_one_resolution_of_hold_h_wins(pg_engine: Engine) -> None:
    """Ten threads post or void the hold "h" at once: one wins, the others are refused."""

    def resolve(index: int) -> str:
        with pg_engine.begin() as conn:
            book = Book(conn)
            if index % 2:
                book.void_pending("h", transfer_id=f"v{index}", event_id="e", occurred_at=AT)
            else:
                book.post_pending("h", transfer_id=f"p{index}", event_id="e", occurred_at=AT)
        return "resolved"

    outcomes = race(10, resolve)

    assert outcomes.count("resolved") == 1
    assert all(isinstance(o, PendingAlreadyResolved) for o in outcomes if o != "resolved")
    with pg_engine.begin() as conn:
        assert audit(conn).ok


def test_racing_resolutions_of_one_hold_let_exactly_one_through(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        Book(conn).hold(transfer("h", "external:card", "platform:fees", 900))

    assert_one_resolution_of_hold_h_wins(pg_engine)


def test_racing_copies_of_a_transfer_with_a_non_hot_side_queue_on_its_lock(
    pg_engine: Engine,
) -> None:
    """Without a savepoint (every account exists, one side is not hot): each copy waits on the
    escrow's row lock, then finds the winner's row and does nothing."""
    with pg_engine.begin() as conn:
        Book(conn).post(
            [
                transfer("fund", "external:card", "escrow:m1", 5_000),
                transfer("open", "external:card", "user:u1", 1),
            ]
        )
    release = transfer("release", "escrow:m1", "user:u1", 3_000)

    def post(_index: int) -> str:
        with pg_engine.begin() as conn:
            Book(conn).post([release])
        return "ok"

    assert race(10, post) == ["ok"] * 10
    with pg_engine.begin() as conn:
        book = Book(conn)
        assert book.balance("escrow:m1", "USD").available_minor == 2_000
        assert book.balance("user:u1", "USD").available_minor == 3_001
        assert audit(conn).ok


def test_racing_conflicting_copies_of_a_transfer_id_post_one_and_refuse_the_others(
    pg_engine: Engine,
) -> None:
    """Copies with other accounts share no lock: a loser that passed its checks fails on the
    unique index (IntegrityError, its transaction lost), one that came later meets
    TransferConflict; either way the id is posted once (ledger.book's docstring)."""
    with pg_engine.begin() as conn:
        Book(conn).post(
            [transfer(f"fund-{i}", "external:card", f"escrow:m{i}", 1_000) for i in range(6)]
        )

    def post(index: int) -> str:
        with pg_engine.begin() as conn:
            Book(conn).post([transfer("same-id", f"escrow:m{index}", "user:u1", 100 + index)])
        return "posted"

    outcomes = race(6, post)

    assert outcomes.count("posted") == 1, outcomes
    assert all(
        isinstance(outcome, IntegrityError | TransferConflict)
        for outcome in outcomes
        if outcome != "posted"
    ), outcomes
    with pg_engine.begin() as conn:
        assert (
            conn.scalar(
                select(func.count())
                .select_from(transfers)
                .where(transfers.c.transfer_id == "same-id")
            )
            == 1
        )
        assert audit(conn).ok


def test_racing_resolutions_of_a_hold_on_a_non_hot_account_let_exactly_one_through(
    pg_engine: Engine,
) -> None:
    with pg_engine.begin() as conn:
        book = Book(conn)
        book.post([transfer("fund", "external:card", "user:u2", 900)])
        book.hold(transfer("h", "user:u2", "platform:payouts", 900))

    assert_one_resolution_of_hold_h_wins(pg_engine)


def ids_in_shards() -> tuple[str, str, str]:
    """Two transfer ids in one shard and a third in another."""
    by_shard: dict[int, list[str]] = {}
    number = 0
    while True:
        candidate = f"fee-{number}"
        shard = zlib.crc32(candidate.encode()) % SHARD_COUNT
        by_shard.setdefault(shard, []).append(candidate)
        same = [ids for ids in by_shard.values() if len(ids) >= 2]
        if same and len(by_shard) >= 2:
            first, second = same[0][:2]
            other = next(ids[0] for ids in by_shard.values() if first not in ids)
            return first, second, other
        number += 1


def test_a_hot_account_lets_transactions_in_other_shards_pass_an_open_one(
    pg_engine: Engine,
) -> None:
    """Hot accounts are the reason for shards: a transaction holding a fee open blocks only
    its own shard of platform:fees, not the account."""
    with pg_engine.begin() as conn:
        Book(conn).post([transfer("open", "external:card", "platform:fees", 1)])
    first, same_shard, other_shard = ids_in_shards()

    with pg_engine.connect() as holder:
        holder.begin()
        Book(holder).post([transfer(first, "external:card", "platform:fees", 10)])

        with pg_engine.connect() as other:
            other.begin()
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            Book(other).post([transfer(other_shard, "external:card", "platform:fees", 20)])
            other.commit()

        with pg_engine.connect() as blocked:
            blocked.begin()
            blocked.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                Book(blocked).post([transfer(same_shard, "external:card", "platform:fees", 30)])
            blocked.rollback()
        holder.commit()

    with pg_engine.begin() as conn:
        assert Book(conn).balance("platform:fees", "USD").available_minor == 31
        assert audit(conn).ok


def test_two_transactions_posting_twice_to_a_hot_account_never_deadlock(
    pg_engine: Engine,
) -> None:
    """A hot account's shard is chosen by the transfer's cause, not its whole id: the two
    postings of one event move one shard row. By whole id these two causes cross: evt-a0#1 and
    evt-b16#2 share a shard, and so do evt-a0#2 and evt-b16#1, so each transaction's second
    posting waited for the row the other's first had taken."""
    with pg_engine.begin() as conn:
        Book(conn).post([transfer("open", "external:card", "platform:fees", 1)])
    meet = threading.Barrier(2, timeout=1.0)
    errors: list[BaseException] = []

    def post_twice(cause: str) -> None:
        try:
            with pg_engine.begin() as conn:
                book = Book(conn)
                book.post([transfer(f"{cause}#1", "external:card", "platform:fees", 10)])
                # Broken when the other waits on this one's shard row: go on alone.
                with contextlib.suppress(threading.BrokenBarrierError):
                    meet.wait()
                book.post([transfer(f"{cause}#2", "external:card", "platform:fees", 10)])
        except BaseException as exc:  # the deadlock, raised in this thread, is the failure
            errors.append(exc)

    posting = [threading.Thread(target=post_twice, args=(c,)) for c in ("evt-a0", "evt-b16")]
    for thread in posting:
        thread.start()
    for thread in posting:
        thread.join(timeout=30)

    assert errors == []
    with pg_engine.begin() as conn:
        assert Book(conn).balance("platform:fees", "USD").available_minor == 41
        shards = conn.execute(
            select(func.count()).select_from(balances).where(balances.c.posted_credits > 0)
        ).scalar_one()
        # platform:fees' shard rows: the one of "open", and one for each cause.
        assert shards == len(
            {zlib.crc32(key.encode()) % SHARD_COUNT for key in ("open", "evt-a0", "evt-b16")}
        )
        assert audit(conn).ok


def test_a_release_waiting_behind_a_freeze_sees_the_freeze(pg_engine: Engine) -> None:
    """The freeze is read under the same lock as the balance: a movement that queued behind a
    freeze is refused once the freeze commits, not posted on the flag it read before."""
    with pg_engine.begin() as conn:
        Book(conn).post([transfer("fund", "external:card", "escrow:m1", 10_000)])
    outcome: list[object] = []

    def release() -> None:
        try:
            with pg_engine.begin() as conn:
                Book(conn).post([transfer("rel", "escrow:m1", "user:u2", 1_000)])
            outcome.append("released")
        except AccountFrozen as exc:
            outcome.append(exc)

    with pg_engine.connect() as freezer:
        freezer.begin()
        Book(freezer).freeze("escrow:m1", "USD")
        waiter = threading.Thread(target=release)
        waiter.start()
        wait_until_blocked(pg_engine)
        freezer.commit()
    waiter.join()

    assert len(outcome) == 1 and isinstance(outcome[0], AccountFrozen)


def wait_until_blocked(engine: Engine) -> None:
    """Until some session of this database waits on a row lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as watcher:
        for _ in range(500):
            if watcher.execute(waiting).scalar():
                return
            watcher.rollback()
            time.sleep(0.01)
    raise AssertionError("the release never waited on the freeze")


def test_the_balance_lock_walks_primary_keys_even_before_any_analyze(pg_engine: Engine) -> None:
    # This machine's PostgreSQL runs with autovacuum off: a soak's tables were never analysed,
    # and the lock's join hashed a sequential scan of every account for each posting (5-85 ms
    # at 155,000 accounts). The plan must not depend on statistics.
    with pg_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_accounts (name, currency, may_go_negative, hot, frozen)"
                " SELECT 'escrow:m' || g, 'USD', false, false, false"
                " FROM generate_series(1, 150000) AS g"
            )
        )
        conn.execute(
            text(
                "INSERT INTO ledger_balances (account_id, shard, may_go_negative, hot,"
                " posted_debits, posted_credits, pending_debits, pending_credits)"
                " SELECT id, 0, false, false, 0, 0, 0, 0 FROM ledger_accounts"
            )
        )
        ids = list(conn.scalars(text("SELECT id FROM ledger_accounts ORDER BY id LIMIT 2")))
        # The statement the book runs, as it reaches the driver (a private look, on purpose).
        params = {"ids": ids, "account_ids": ids}
        compiled = balances_module._LOCK._for(conn, params)
        converted = prepared_module._parameters(compiled, params)
        plan = "\n".join(
            row[0] for row in conn.exec_driver_sql("EXPLAIN " + compiled.sql, converted)
        )
        assert "Seq Scan" not in plan, plan
        assert len(balances_module._LOCK.rows(conn, params)) == 2
