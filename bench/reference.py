"""The references the engine's figures are divided by: the same shape of work done by the
plainest code that could do it, in the same run, on the same servers.

One reference transaction is what an applied event costs at the least: its inbox row, two
ledger entries, the two balance rows they move, and one outbox row, committed. The
PostgreSQL reference runs it with plain psycopg (no SQLAlchemy, no policy) over as many
connections as the workers hold; the SQLite reference with the standard library's sqlite3, in
commit batches of the replay's size. Both write into the engine's own tables (migrated the same
way), so indexes, constraints and triggers cost what they cost the engine.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from bench.cpu import CpuMeter, CpuSplit
from ledger.registry import open_accounts

AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ACCOUNTS = 512
BARRIER_TIMEOUT_S = 120.0

INBOX = (
    "INSERT INTO inbox (event_id, type, body_sha256, body, occurred_at, contract_id, result)"
    " VALUES (%s, 'milestone.funded', %s, %s, %s, %s, 'applied')"
)
TRANSFER = (
    "INSERT INTO ledger_transfers (transfer_id, kind, debit_account_id, credit_account_id,"
    " amount_minor, currency, code, event_id, occurred_at)"
    " VALUES (%s, 'posted', %s, %s, %s, 'USD', 'funding', %s, %s)"
)
BALANCE = (
    "UPDATE ledger_balances SET posted_debits = posted_debits + %s,"
    " posted_credits = posted_credits + %s WHERE account_id = %s AND shard = 0"
)
OUTBOX = (
    "INSERT INTO outbox (notification_id, type, occurred_at, body, event_id, contract_id)"
    " VALUES (%s, 'refund.completed', %s, %s, %s, %s)"
)


def open_reference_accounts(engine: Engine, count: int = ACCOUNTS) -> list[int]:
    """Open `count` user accounts through the ledger (so they carry their balance rows)."""
    keys = [(f"user:ref{number}", "USD") for number in range(count)]
    with engine.begin() as conn:
        opened = open_accounts(conn, keys)
    return [opened[key].id for key in keys]


def _transaction_values(
    event_id: str, number: int, accounts: Sequence[int]
) -> tuple[str, str, int, int, int]:
    body = json.dumps({"event_id": event_id, "type": "milestone.funded", "n": number})
    digest = hashlib.sha256(body.encode()).hexdigest()
    # Neighbouring transactions touch different rows, as events of different contracts do.
    debit = accounts[(2 * number) % len(accounts)]
    credit = accounts[(2 * number + 1) % len(accounts)]
    return body, digest, debit, credit, 1_000 + number % 9_000


def reference_transaction(
    conn: psycopg.Connection[Any], event_id: str, accounts: Sequence[int], number: int | None = None
) -> None:
    """One reference transaction for `event_id`, committed: inbox row, two transfers, three
    balance moves in id order, outbox row. `number` picks the accounts (a hash of the id when
    not given)."""
    if number is None:
        number = zlib.crc32(event_id.encode())
    body, digest, debit, credit, amount = _transaction_values(event_id, number, accounts)
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(INBOX, (event_id, digest, body, AT, f"c-{number}"))
        # Balance rows in id order, as the ledger locks them, so no two deadlock.
        for account, debits, credits in sorted([(debit, amount, 0), (credit, 0, amount)]):
            cursor.execute(BALANCE, (debits, credits, account))
        cursor.execute(TRANSFER, (f"{event_id}#1", debit, credit, amount, event_id, AT))
        cursor.execute(TRANSFER, (f"{event_id}#2", credit, debit, 1, event_id, AT))
        cursor.execute(BALANCE, (1, 0, credit))
        cursor.execute(OUTBOX, (f"{event_id}:n", AT, body, event_id, f"c-{number}"))


@dataclass(frozen=True, slots=True)
class _Gates:
    """Where the reference's threads meet the parent: all connected (the clock starts), all
    done (it stops), and released to disconnect once the parent has read their CPU time (a
    server process that ended can no longer be read)."""

    start: Any
    finish: Any
    release: Any


def _pg_worker(
    dsn: str, prefix: str, numbers: range, accounts: Sequence[int], gates: _Gates
) -> None:
    try:
        with psycopg.connect(dsn) as conn:
            # Every connection is open before the clock starts, as the workers' pools are.
            gates.start.wait(timeout=BARRIER_TIMEOUT_S)
            _pg_transactions(conn, prefix, numbers, accounts)
            # The parent's wait is the bounded one: its timeout breaks the barrier for all.
            gates.finish.wait()
            gates.release.wait(timeout=BARRIER_TIMEOUT_S)
    except BaseException:
        # Nobody waits for a thread that cannot come: the parent sees the broken barriers.
        gates.start.abort()
        gates.finish.abort()
        raise


def _pg_transactions(
    conn: psycopg.Connection[Any], prefix: str, numbers: range, accounts: Sequence[int]
) -> None:
    for number in numbers:
        reference_transaction(conn, f"{prefix}-{number}", accounts, number)


def _pg_process(
    dsn: str, prefix: str, numbers: range, threads: int, *, accounts: Sequence[int], gates: _Gates
) -> None:
    failures: list[BaseException] = []

    def work(share: range) -> None:
        try:
            _pg_worker(dsn, prefix, share, accounts, gates)
        except BaseException as exc:
            failures.append(exc)
            raise

    workers = [
        threading.Thread(target=work, args=(numbers[index::threads],)) for index in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        # A thread's exception does not change its process's exit code: this does.
        raise SystemExit(f"{len(failures)} reference thread(s) failed: {failures[0]!r}")


@dataclass(frozen=True, slots=True)
class ReferenceResult:
    transactions: int
    seconds: float
    cpu: CpuSplit | None = None

    @property
    def per_second(self) -> float:
        return self.transactions / self.seconds


def postgres_reference(
    engine: Engine,
    *,
    transactions: int,
    processes: int,
    threads: int,
    prefix: str = "ref",
    meter: CpuMeter | None = None,
) -> ReferenceResult:
    """Run `transactions` reference transactions over processes x threads connections; with a
    `meter`, say whose CPU they took."""
    accounts = open_reference_accounts(engine)
    url = make_url(engine.url.render_as_string(hide_password=False))
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    numbers = range(transactions)
    parties = processes * threads + 1
    gates = _Gates(context.Barrier(parties), context.Barrier(parties), context.Event())
    children = [
        context.Process(
            target=_pg_process,
            args=(dsn, prefix, numbers[index::processes], threads),
            kwargs={"accounts": accounts, "gates": gates},
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    completed = False
    cpu = None
    try:
        gates.start.wait(timeout=BARRIER_TIMEOUT_S)
        if meter is not None:
            meter.start()
        started = time.perf_counter()
        gates.finish.wait(timeout=BARRIER_TIMEOUT_S + transactions / 10)
        seconds = time.perf_counter() - started
        cpu = meter.stop() if meter is not None else None
        completed = True
    except threading.BrokenBarrierError:
        pass  # a thread failed (or never came): the exit codes below say which
    finally:
        # Always let the threads go, so no child is left waiting for ever.
        gates.release.set()
        for child in children:
            child.join()
    failed = [child.exitcode for child in children if child.exitcode]
    if failed or not completed:
        raise RuntimeError(f"the reference did not complete; process exit codes {failed}")
    return ReferenceResult(transactions, seconds, cpu)


def sqlite_reference(
    engine: Engine, *, transactions: int, commit_every: int, prefix: str = "ref"
) -> ReferenceResult:
    """Run `transactions` reference transactions on the engine's SQLite file with sqlite3,
    `commit_every` to a commit, each in a savepoint as the replay runs an event."""
    accounts = open_reference_accounts(engine)
    database = make_url(engine.url.render_as_string(hide_password=False)).database
    connection = sqlite3.connect(database or ":memory:", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    sql = [statement.replace("%s", "?") for statement in (INBOX, TRANSFER, BALANCE, OUTBOX)]
    inbox_sql, transfer_sql, balance_sql, outbox_sql = sql
    started = time.perf_counter()
    connection.execute("BEGIN")
    for number in range(transactions):
        event_id = f"{prefix}-{number}"
        body, digest, debit, credit, amount = _transaction_values(event_id, number, accounts)
        at = AT.isoformat()
        connection.execute("SAVEPOINT event")
        connection.execute(inbox_sql, (event_id, digest, body, at, f"c-{number}"))
        connection.execute(transfer_sql, (f"{event_id}#1", debit, credit, amount, event_id, at))
        connection.execute(balance_sql, (amount, 0, debit))
        connection.execute(balance_sql, (0, amount, credit))
        connection.execute(outbox_sql, (f"{event_id}:n", at, body, event_id, f"c-{number}"))
        connection.execute("RELEASE SAVEPOINT event")
        if (number + 1) % commit_every == 0:
            connection.execute("COMMIT")
            connection.execute("BEGIN")
    connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return ReferenceResult(transactions, seconds)
