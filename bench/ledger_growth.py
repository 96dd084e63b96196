"""Balance reads and `recourse audit` as the book grows (PostgreSQL).

Transfers are added set-based (`generate_series`) between a fixed set of user accounts and one
hot platform account, and the balance rows are set to what the entries add up to, so the audit
finds the books sound. At each size: the best of five medians of `Book.balance` reads (user
accounts and the hot account, whose balance sums its shard rows) and one whole audit in a
REPEATABLE READ snapshot, as `recourse audit` runs it.

Headline: the balance read at the largest size over the read at the smallest (flat is 1.0).
The audit's cost per transfer at the largest size over that at the smallest says whether it
grows linearly (1.0) or worse.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, text

from bench.results import BenchResult
from bench.servers import pg_database
from ledger import Book
from ledger.audit import audit
from ledger.registry import open_accounts
from ledger.tables import accounts
from workers.database import make_engine, migrate

USERS = 10_000
HOT = "platform:fees"
READS = 200
ROUNDS = 5
GOAL_READ_GROWTH = 1.5
GOAL_AUDIT_GROWTH = 1.5
AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

_FILL = text(
    """
    INSERT INTO ledger_transfers (transfer_id, kind, debit_account_id, credit_account_id,
                                  amount_minor, currency, code, event_id, occurred_at)
    SELECT 'grow-' || n, 'posted', :first + (n % :users),
           CASE WHEN n % 10 = 0 THEN :hot ELSE :first + ((n * 7 + 1) % :users) END,
           100 + n % 900, 'USD', 'funding', 'grow-event-' || (n / 3), :at
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS n
    """
)
# Balances equal their entries, all on shard 0 (a read sums every shard either way).
_SETTLE = text(
    """
    WITH sides AS (
        SELECT debit_account_id AS id, amount_minor AS debits, 0 AS credits
        FROM ledger_transfers
        UNION ALL
        SELECT credit_account_id, 0, amount_minor FROM ledger_transfers
    ), totals AS (
        SELECT id, sum(debits) AS debits, sum(credits) AS credits FROM sides GROUP BY id
    )
    UPDATE ledger_balances AS b
    SET posted_debits = totals.debits, posted_credits = totals.credits
    FROM totals
    WHERE b.account_id = totals.id AND b.shard = 0
    """
)


def _open(engine: Engine) -> tuple[int, int]:
    """Open the user accounts and the hot account; the first user id and the hot id."""
    names = [(f"user:grow{number:05d}", "USD") for number in range(USERS)]
    with engine.begin() as conn:
        opened = open_accounts(conn, names)
        hot = open_accounts(conn, [(HOT, "USD")])[(HOT, "USD")]
        ids = sorted(account.id for account in opened.values())
    if ids[-1] - ids[0] + 1 != USERS:
        raise RuntimeError("user accounts did not get consecutive ids")
    return ids[0], hot.id


def _grow(engine: Engine, first: int, hot: int, start: int, stop: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            _FILL,
            {"first": first, "users": USERS, "hot": hot, "at": AT, "start": start, "stop": stop},
        )
        conn.execute(_SETTLE)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE ledger_transfers"))
        conn.execute(text("VACUUM ANALYZE ledger_balances"))


def _read_seconds(engine: Engine) -> float:
    """Seconds of one Book.balance read, over user accounts and the hot account: the best of
    ROUNDS medians, since on a shared machine a neighbour's burst only ever adds time."""
    medians = []
    with engine.connect() as conn:
        book = Book(conn)
        for _round in range(ROUNDS):
            timings = []
            for number in range(READS):
                name = HOT if number % 4 == 0 else f"user:grow{(number * 37) % USERS:05d}"
                started = time.perf_counter()
                book.balance(name, "USD")
                timings.append(time.perf_counter() - started)
            medians.append(statistics.median(timings))
        conn.rollback()
    return min(medians)


def _audit_seconds(engine: Engine) -> tuple[float, bool, int]:
    snapshot = engine.execution_options(isolation_level="REPEATABLE READ")
    with snapshot.connect() as conn, conn.begin():
        started = time.perf_counter()
        report = audit(conn)
        seconds = time.perf_counter() - started
    return seconds, report.ok, report.transfers_checked


def run(sizes: Sequence[int]) -> BenchResult:
    """Measure at each of `sizes` transfers (ascending)."""
    points = []
    with pg_database() as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            first, hot = _open(engine)
            stored = 0
            for size in sizes:
                started = time.perf_counter()
                _grow(engine, first, hot, stored + 1, size)
                fill_seconds = time.perf_counter() - started
                stored = size
                read = _read_seconds(engine)
                audit_seconds, ok, checked = _audit_seconds(engine)
                with engine.connect() as conn:
                    account_count = conn.execute(
                        select(func.count()).select_from(accounts)
                    ).scalar_one()
                points.append(
                    {
                        "transfers": checked,
                        "accounts": account_count,
                        "fill_s": round(fill_seconds, 2),
                        "balance_read_us": round(read * 1e6, 1),
                        "audit_s": round(audit_seconds, 4),
                        "audit_us_per_transfer": round(audit_seconds / checked * 1e6, 3),
                        "audit_ok": ok,
                    }
                )
        finally:
            engine.dispose()
    smallest, largest = points[0], points[-1]
    read_growth = largest["balance_read_us"] / smallest["balance_read_us"]
    audit_growth = largest["audit_us_per_transfer"] / smallest["audit_us_per_transfer"]
    slope = math.log(largest["audit_s"] / smallest["audit_s"]) / math.log(
        largest["transfers"] / smallest["transfers"]
    )
    return BenchResult(
        name="ledger_growth",
        figure=(
            f"read {largest['balance_read_us']:,.0f} us, audit {largest['audit_s']:.2f} s"
            f" at {largest['transfers']:,}"
        ),
        reference=(
            f"read {smallest['balance_read_us']:,.0f} us, audit {smallest['audit_s']:.3f} s"
            f" at {smallest['transfers']:,}"
        ),
        ratio=read_growth,
        goal=(f"read ratio <= {GOAL_READ_GROWTH}; audit per transfer ratio <= {GOAL_AUDIT_GROWTH}"),
        met=read_growth <= GOAL_READ_GROWTH
        and audit_growth <= GOAL_AUDIT_GROWTH
        and all(point["audit_ok"] for point in points),
        metrics={
            "points": points,
            "balance_read_growth": round(read_growth, 3),
            "audit_per_transfer_growth": round(audit_growth, 3),
            "audit_log_log_slope": round(slope, 3),
        },
        notes=[
            f"audit per transfer x{audit_growth:.2f} from {smallest['transfers']:,} to"
            f" {largest['transfers']:,} (log-log slope {slope:.2f}; 1.0 is linear)"
        ],
    )
