"""The audit: green on sound books, and naming each kind of damage when rows are changed
behind the ledger's back. Also the `recourse audit` command that prints it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, insert, select, text, update
from typer.testing import CliRunner

from ledger import Book, Transfer, TransferCode, audit
from ledger.tables import accounts, balances, transfers
from workers.cli import app

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def transfer(transfer_id: str, debit: str, credit: str, amount_minor: int) -> Transfer:
    return Transfer(
        transfer_id=transfer_id,
        debit=debit,
        credit=credit,
        amount_minor=amount_minor,
        currency="USD",
        code=TransferCode.FUNDING,
        event_id="evt-1",
        occurred_at=AT,
    )


def seed(engine: Engine) -> None:
    """A small sound book: a funded milestone, a fee, a partial release, an open hold."""
    with engine.begin() as conn:
        book = Book(conn)
        book.post(
            [
                transfer("fund", "external:card", "escrow:m1", 10_000),
                transfer("fee", "external:card", "platform:fees", 400),
            ]
        )
        book.hold(transfer("hold", "escrow:m1", "user:u2", 6_000))
        book.post_pending("hold", transfer_id="post", event_id="e", occurred_at=AT, amount_minor=1)
        book.hold(transfer("hold-2", "escrow:m1", "user:u2", 2_000))


def account_id(conn: Connection, name: str) -> int:
    return int(conn.scalar(select(accounts.c.id).where(accounts.c.name == name)) or 0)


def test_an_empty_book_and_a_sound_book_pass(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        assert audit(conn).ok
    seed(sqlite_engine)

    with sqlite_engine.begin() as conn:
        report = audit(conn)

    assert report.ok, report.problems
    (usd,) = report.currencies
    assert (usd.posted_debits_minor, usd.posted_credits_minor) == (10_401, 10_401)
    assert (usd.pending_debits_minor, usd.pending_credits_minor) == (2_000, 2_000)
    assert (report.accounts_checked, report.transfers_checked) == (4, 5)


def test_a_changed_balance_row_breaks_the_zero_sum_and_disagrees_with_its_entries(
    sqlite_engine: Engine,
) -> None:
    seed(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.execute(
            update(balances)
            .where(balances.c.account_id == account_id(conn, "escrow:m1"))
            .values(posted_credits=balances.c.posted_credits + 5)
        )
        report = audit(conn)

    assert not report.ok
    assert any(p.startswith("escrow:m1 USD: stored totals") for p in report.problems)
    assert "USD: posted balances sum to 5, not 0" in report.problems


def test_a_changed_pending_total_is_caught_apart_from_posted(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.execute(
            update(balances)
            .where(balances.c.account_id == account_id(conn, "user:u2"))
            .values(pending_credits=0)
        )
        report = audit(conn)

    assert "USD: pending balances sum to -2000, not 0" in report.problems


def test_a_transfer_written_without_its_balances_is_caught(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.execute(
            insert(transfers).values(
                transfer_id="sneaky",
                kind="posted",
                debit_account_id=account_id(conn, "platform:fees"),
                credit_account_id=account_id(conn, "user:u2"),
                amount_minor=50,
                currency="USD",
                code="correction",
                event_id="e",
                occurred_at=AT,
            )
        )
        report = audit(conn)

    assert any(p.startswith("platform:fees USD: stored totals") for p in report.problems)
    assert any(p.startswith("user:u2 USD: stored totals") for p in report.problems)


def test_a_non_negative_account_below_zero_is_caught(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    with sqlite_engine.begin() as conn:
        # Only with the database's own CHECK turned off can this row exist at all.
        conn.execute(text("PRAGMA ignore_check_constraints = ON"))
        conn.execute(
            update(balances)
            .where(balances.c.account_id == account_id(conn, "escrow:m1"))
            .values(posted_debits=20_000)
        )
        report = audit(conn)
        conn.execute(text("PRAGMA ignore_check_constraints = OFF"))

    assert "escrow:m1 USD: -12000 available on an account that may not go below 0" in (
        report.problems
    )


def test_a_resolution_posting_more_than_its_hold_is_caught(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    with sqlite_engine.begin() as conn:
        held = conn.execute(select(transfers).where(transfers.c.transfer_id == "hold-2")).one()
        conn.execute(
            insert(transfers).values(
                transfer_id="greedy",
                kind="post_pending",
                debit_account_id=held.debit_account_id,
                credit_account_id=held.credit_account_id,
                amount_minor=2_001,
                currency="USD",
                code="funding",
                event_id="e",
                occurred_at=AT,
                pending_id=held.id,
            )
        )
        report = audit(conn)

    assert (
        "transfer greedy (post_pending of 2001) resolves hold-2 (pending of 2000)"
        in report.problems
    )


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_recourse_audit_exits_0_on_sound_books_and_1_with_the_problems(
    sqlite_engine: Engine, as_json: bool
) -> None:
    seed(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    args = ["audit", "--db", url, *(["--json"] if as_json else [])]
    runner = CliRunner()

    sound = runner.invoke(app, args)
    with sqlite_engine.begin() as conn:
        conn.execute(
            update(balances)
            .where(balances.c.account_id == account_id(conn, "escrow:m1"))
            .values(posted_credits=balances.c.posted_credits + 5)
        )
    broken = runner.invoke(app, args)

    assert sound.exit_code == 0, sound.output
    assert broken.exit_code == 1, broken.output
    if as_json:
        assert json.loads(sound.output)["ok"] is True
        report = json.loads(broken.output)
        assert report["ok"] is False
        assert "USD: posted balances sum to 5, not 0" in report["problems"]
        assert report["currencies"]["USD"]["posted_credits_minor"] == 10_406
    else:
        assert "ok" in sound.output
        assert "posted balances sum to 5, not 0" in broken.output
