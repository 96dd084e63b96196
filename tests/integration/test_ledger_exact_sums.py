"""Running sums past 2^63 - 1 (MESSAGES.md, Limits: no sequence of valid events can make a later
valid event fail).

PostgreSQL keeps them exact (NUMERIC): a balance row set just below 2^63 by direct SQL takes a
valid posting on top, reads back the exact sum as an `int`, and the audit stays green. SQLite,
the embedded store, is bounded: a posting that would pass 2^63 - 1 on one row is refused with
SumOutOfRange, nothing rounded; reads over several rows stay exact past it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, select, text, update

from ledger import Book, SumOutOfRange, Transfer, TransferCode, audit
from ledger.tables import SHARD_COUNT, accounts, balances
from policy import rows
from policy.state import ContractState
from policy.tables import contracts

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
INT64_MAX = 2**63 - 1
LARGEST = 10**15  # the largest amount a message may carry


def transfer(transfer_id: str, debit: str, credit: str, amount_minor: int) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        debit=debit,
        credit=credit,
        amount_minor=amount_minor,
        currency="USD",
        code=TransferCode.FUNDING,
        event_id=f"evt-{transfer_id}",
        occurred_at=AT,
    )


def account_id(conn: Connection, name: str) -> int:
    found = conn.scalar(select(accounts.c.id).where(accounts.c.name == name))
    assert isinstance(found, int)
    return found


def record_history(conn: Connection, debit: str, credit: str, total: int, prefix: str) -> None:
    """Entries and balance rows of a history that moved `total` from `debit` to `credit` in
    postings of the largest amount, written by SQL (thousands of postings would take minutes
    through the book). The balance rows then hold `total` as the posted sums, as they would."""
    debit_id, credit_id = account_id(conn, debit), account_id(conn, credit)
    full, rest = divmod(total, LARGEST)
    amounts = [LARGEST] * full + ([rest] if rest else [])
    conn.execute(
        text(
            "INSERT INTO ledger_transfers (transfer_id, kind, debit_account_id,"
            " credit_account_id, amount_minor, currency, code, event_id, occurred_at)"
            " VALUES (:transfer_id, 'posted', :debit, :credit, :amount, 'USD', 'funding',"
            " :event_id, :at)"
        ),
        [
            {
                "transfer_id": f"{prefix}-{number}",
                "debit": debit_id,
                "credit": credit_id,
                "amount": amount,
                "event_id": f"evt-{prefix}-{number}",
                "at": AT,
            }
            for number, amount in enumerate(amounts)
        ],
    )
    conn.execute(
        update(balances)
        .where(balances.c.account_id == debit_id, balances.c.shard == 0)
        .values(posted_debits=balances.c.posted_debits + total)
    )
    conn.execute(
        update(balances)
        .where(balances.c.account_id == credit_id, balances.c.shard == 0)
        .values(posted_credits=balances.c.posted_credits + total)
    )


def open_with_one_posting(engine: Engine, debit: str, credit: str) -> None:
    with engine.begin() as conn:
        Book(conn).post([transfer("open", debit, credit, 1)])


@pytest.mark.postgres
def test_postgresql_a_posting_on_a_row_just_below_2_63_is_exact(pg_engine: Engine) -> None:
    open_with_one_posting(pg_engine, "user:payer", "user:payee")
    with pg_engine.begin() as conn:
        # 1 + (2^63 - 2): the payee's credits are exactly 2^63 - 1, the most a BIGINT holds.
        record_history(conn, "user:payer", "user:payee", INT64_MAX - 1, "history")

    with pg_engine.begin() as conn:
        Book(conn).post([transfer("on-top", "user:payer", "user:payee", LARGEST)])

    expected = INT64_MAX + LARGEST
    with pg_engine.begin() as conn:
        book = Book(conn)
        payee = book.balance("user:payee", "USD")
        assert payee.posted_minor == expected
        assert type(payee.posted_minor) is int
        assert book.balance("user:payer", "USD").posted_minor == -expected
        assert book.balances() == {
            "user:payee": {"USD": expected},
            "user:payer": {"USD": -expected},
        }
        stored = conn.execute(
            select(balances.c.posted_credits).where(
                balances.c.account_id == account_id(conn, "user:payee")
            )
        ).scalar_one()
        assert type(stored) is int
        assert stored == expected
    with pg_engine.connect() as conn:
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        report = audit(conn)
    assert report.problems == []
    (usd,) = report.currencies
    assert usd.posted_credits_minor == expected
    assert type(usd.posted_credits_minor) is int
    assert usd.posted_debits_minor == expected


@pytest.mark.postgres
def test_postgresql_a_hot_accounts_shards_sum_past_2_63_exactly(pg_engine: Engine) -> None:
    open_with_one_posting(pg_engine, "user:payer", "platform:fees")
    near = INT64_MAX - 10
    with pg_engine.begin() as conn:
        fees = account_id(conn, "platform:fees")
        # Every shard row just below 2^63, all at once: the hot account holds 16 times that.
        conn.execute(
            update(balances).where(balances.c.account_id == fees).values(posted_credits=near)
        )
        shards = conn.execute(
            select(balances.c.shard).where(balances.c.account_id == fees)
        ).scalars()
        assert sorted(shards) == list(range(SHARD_COUNT))

    with pg_engine.begin() as conn:
        Book(conn).post([transfer("on-top", "user:payer", "platform:fees", LARGEST)])

    with pg_engine.begin() as conn:
        fees_balance = Book(conn).balance("platform:fees", "USD").posted_minor
    assert fees_balance == SHARD_COUNT * near + LARGEST
    assert type(fees_balance) is int


@pytest.mark.postgres
def test_postgresql_a_contracts_totals_pass_2_63_exactly(pg_engine: Engine) -> None:
    contract = ContractState(
        contract_id="c1",
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
        client_jurisdiction=None,
        opened_at=AT,
        closed_at=None,
        paid_total_minor=INT64_MAX,
        refunded_total_minor=0,
        reviews_hidden=False,
    )
    with pg_engine.begin() as conn:
        rows.insert_row(conn, contracts, contract)
    with pg_engine.begin() as conn:
        loaded = rows.load(conn, contracts, ContractState, "c1", lock=True)
        assert loaded is not None
        rows.save_row(
            conn,
            contracts,
            dataclasses.replace(
                loaded,
                paid_total_minor=loaded.paid_total_minor + LARGEST,
                refunded_total_minor=INT64_MAX,
            ),
        )
    with pg_engine.begin() as conn:
        again = rows.load(conn, contracts, ContractState, "c1")
    assert again is not None
    assert (again.paid_total_minor, again.refunded_total_minor) == (INT64_MAX + LARGEST, INT64_MAX)
    assert type(again.paid_total_minor) is int


def test_sqlite_a_posting_that_would_pass_2_63_is_refused_and_nothing_is_rounded(
    sqlite_engine: Engine,
) -> None:
    open_with_one_posting(sqlite_engine, "user:payer", "user:payee")
    with sqlite_engine.begin() as conn:
        # The payee's credits one largest posting short of 2^63 - 1.
        record_history(conn, "user:payer", "user:payee", INT64_MAX - 1 - LARGEST, "history")

    # Exactly up to the bound: accepted.
    with sqlite_engine.begin() as conn:
        Book(conn).post([transfer("to-the-bound", "user:payer", "user:payee", LARGEST)])

    with sqlite_engine.connect() as conn, conn.begin():
        with pytest.raises(SumOutOfRange, match=r"2\^63 - 1"):
            Book(conn).post([transfer("past-the-bound", "user:payer", "user:payee", 1)])
        conn.rollback()

    with sqlite_engine.begin() as conn:
        book = Book(conn)
        assert book.balance("user:payee", "USD").posted_minor == INT64_MAX
        assert book.balance("user:payer", "USD").posted_minor == -INT64_MAX
        stored = conn.execute(
            text("SELECT typeof(posted_credits), posted_credits FROM ledger_balances")
        ).all()
        assert {kind for kind, _ in stored} == {"integer"}
        assert max(value for _, value in stored) == INT64_MAX
        report = audit(conn)
    assert report.problems == []
    assert report.transfers_checked == 1 + (INT64_MAX - 1 - LARGEST) // LARGEST + 1 + 1


def test_sqlite_the_triggers_refuse_a_total_sqlite_would_round(sqlite_engine: Engine) -> None:
    """Even SQL that bypasses the book cannot leave a rounded (REAL) total behind."""
    open_with_one_posting(sqlite_engine, "user:payer", "user:payee")
    with sqlite_engine.begin() as conn:
        payee = account_id(conn, "user:payee")
    with sqlite_engine.connect() as conn, conn.begin():
        conn.execute(
            text(f"UPDATE ledger_balances SET posted_credits = {INT64_MAX} WHERE account_id = :a"),
            {"a": payee},
        )
        with pytest.raises(Exception, match="ledger_balances_sum_out_of_range"):
            conn.execute(
                text(
                    "UPDATE ledger_balances SET posted_credits = posted_credits + 1"
                    " WHERE account_id = :a"
                ),
                {"a": payee},
            )
        # The failed statement left the row as it was.
        assert conn.execute(
            text(
                "SELECT typeof(posted_credits), posted_credits FROM ledger_balances"
                " WHERE account_id = :a"
            ),
            {"a": payee},
        ).one() == ("integer", INT64_MAX)
        conn.rollback()


def test_sqlite_reads_over_a_hot_accounts_shards_are_exact_past_2_63(
    sqlite_engine: Engine,
) -> None:
    open_with_one_posting(sqlite_engine, "user:payer", "platform:fees")
    near = INT64_MAX - 10
    with sqlite_engine.begin() as conn:
        fees = account_id(conn, "platform:fees")
        conn.execute(
            update(balances).where(balances.c.account_id == fees).values(posted_credits=near)
        )
    with sqlite_engine.begin() as conn:
        book = Book(conn)
        assert book.balance("platform:fees", "USD").posted_minor == SHARD_COUNT * near
        assert book.balances()["platform:fees"] == {"USD": SHARD_COUNT * near}


def test_sqlite_a_contract_total_past_2_63_is_refused_before_it_is_written(
    sqlite_engine: Engine,
) -> None:
    contract = ContractState(
        contract_id="c1",
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
        client_jurisdiction=None,
        opened_at=AT,
        closed_at=None,
        paid_total_minor=INT64_MAX,
        refunded_total_minor=0,
        reviews_hidden=False,
    )
    with sqlite_engine.begin() as conn:
        rows.insert_row(conn, contracts, contract)
    with sqlite_engine.connect() as conn, conn.begin():
        with pytest.raises(SumOutOfRange, match="64-bit"):
            rows.save_row(
                conn, contracts, dataclasses.replace(contract, paid_total_minor=INT64_MAX + 1)
            )
        conn.rollback()
    with sqlite_engine.begin() as conn:
        again = rows.load(conn, contracts, ContractState, "c1")
    assert again is not None
    assert again.paid_total_minor == INT64_MAX
