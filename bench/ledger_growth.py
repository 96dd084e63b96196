"""Balance reads and `recourse audit` as the book grows (PostgreSQL).

One database per size, each filled set-based (`generate_series`) with that many transfers
between a fixed set of user accounts and one hot platform account, its balance rows set to what
the entries add up to, so the audit finds the books sound.

The sizes are measured at the same moments, not one after the other: on a shared machine the
load drifts over the seconds between one size's measurement and the next's, and a read of a few
hundred microseconds moved by half between runs while nothing it touches grows. Each round
takes a batch of `Book.balance` reads (user accounts and the hot account, whose balance sums its
shard rows) on every size in turn, starting with a different size each round, and divides each
size's batch median by the smallest size's of the same round; the audit, a whole one in a
REPEATABLE READ snapshot as `recourse audit` runs it, is interleaved the same way over fewer
rounds.

Headline: the median over rounds of the read at the largest size over the read at the smallest
(flat is 1.0). The median per-round ratio of the audit's cost per transfer says whether it grows
linearly (1.0) or worse.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select, text

from bench.results import BenchResult
from bench.servers import pg_database
from ledger import Book
from ledger.audit import audit
from ledger.registry import open_accounts
from ledger.tables import accounts
from workers.database import make_engine, migrate

USERS = 10_000
HOT = "platform:fees"
# A round's batches are short (about 100 reads of a few hundred microseconds each) so that the
# load stays about the same across the sizes of one round; many rounds make the median steady.
READS_PER_BATCH = 100
READ_ROUNDS = 40
AUDIT_ROUNDS = 3
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


@dataclass
class _GrownBook:
    """One size's database and what was measured on it."""

    size: int
    engine: Engine
    fill_seconds: float
    account_count: int
    read_medians: list[float] = field(default_factory=list)
    audit_seconds: list[float] = field(default_factory=list)
    audit_ok: bool = True
    transfers_checked: int = 0


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


def _fill(engine: Engine, size: int) -> float:
    """Migrate, open the accounts and add `size` transfers; the seconds the transfers took."""
    migrate(engine)
    first, hot = _open(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            _FILL,
            {"first": first, "users": USERS, "hot": hot, "at": AT, "start": 1, "stop": size},
        )
        conn.execute(_SETTLE)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE ledger_transfers"))
        conn.execute(text("VACUUM ANALYZE ledger_balances"))
    return time.perf_counter() - started


def _read_batch(conn: Connection) -> float:
    """The median seconds of one Book.balance read over a batch of user accounts and the hot
    account."""
    book = Book(conn)
    timings = []
    for number in range(READS_PER_BATCH):
        name = HOT if number % 4 == 0 else f"user:grow{(number * 37) % USERS:05d}"
        started = time.perf_counter()
        book.balance(name, "USD")
        timings.append(time.perf_counter() - started)
    conn.rollback()
    return statistics.median(timings)


def _audit(grown: _GrownBook) -> None:
    snapshot = grown.engine.execution_options(isolation_level="REPEATABLE READ")
    with snapshot.connect() as conn, conn.begin():
        started = time.perf_counter()
        report = audit(conn)
        grown.audit_seconds.append(time.perf_counter() - started)
    grown.audit_ok = grown.audit_ok and report.ok
    grown.transfers_checked = report.transfers_checked


def _rotated(books: list[_GrownBook], round_number: int) -> list[_GrownBook]:
    """The books in turn, the first a different one each round, so that no size always goes
    first or last in a round."""
    shift = round_number % len(books)
    return books[shift:] + books[:shift]


def _measure(books: list[_GrownBook]) -> None:
    with ExitStack() as stack:
        conns = {grown.size: stack.enter_context(grown.engine.connect()) for grown in books}
        # Untimed: the first reads of each connection compile and plan what the rest reuse.
        for grown in books:
            _read_batch(conns[grown.size])
        for round_number in range(READ_ROUNDS):
            for grown in _rotated(books, round_number):
                grown.read_medians.append(_read_batch(conns[grown.size]))
    for round_number in range(AUDIT_ROUNDS):
        for grown in _rotated(books, round_number):
            _audit(grown)


def _median_ratio(values: Sequence[float], references: Sequence[float]) -> float:
    """The median over rounds of a value over the reference measured in the same round."""
    return statistics.median(value / ref for value, ref in zip(values, references, strict=True))


def run(sizes: Sequence[int]) -> BenchResult:
    """Measure at each of `sizes` transfers (ascending; the first is the reference)."""
    with ExitStack() as stack:
        books: list[_GrownBook] = []
        for size in sizes:
            engine = make_engine(stack.enter_context(pg_database()))
            stack.callback(engine.dispose)
            fill_seconds = _fill(engine, size)
            with engine.connect() as conn:
                account_count = conn.execute(
                    select(func.count()).select_from(accounts)
                ).scalar_one()
            books.append(_GrownBook(size, engine, fill_seconds, account_count))
        _measure(books)
    reference = books[0]
    points = []
    for grown in books:
        audit_per_transfer = [seconds / grown.transfers_checked for seconds in grown.audit_seconds]
        reference_per_transfer = [
            seconds / reference.transfers_checked for seconds in reference.audit_seconds
        ]
        audit_seconds = statistics.median(grown.audit_seconds)
        points.append(
            {
                "transfers": grown.transfers_checked,
                "accounts": grown.account_count,
                "fill_s": round(grown.fill_seconds, 2),
                "balance_read_us": round(statistics.median(grown.read_medians) * 1e6, 1),
                "balance_read_ratio": round(
                    _median_ratio(grown.read_medians, reference.read_medians), 3
                ),
                "audit_s": round(audit_seconds, 4),
                "audit_us_per_transfer": round(audit_seconds / grown.transfers_checked * 1e6, 3),
                "audit_per_transfer_ratio": round(
                    _median_ratio(audit_per_transfer, reference_per_transfer), 3
                ),
                "audit_ok": grown.audit_ok,
            }
        )
    smallest, largest = points[0], points[-1]
    read_growth = largest["balance_read_ratio"]
    audit_growth = largest["audit_per_transfer_ratio"]
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
            "read_rounds": READ_ROUNDS,
            "reads_per_batch": READS_PER_BATCH,
            "audit_rounds": AUDIT_ROUNDS,
            "balance_read_growth": read_growth,
            "audit_per_transfer_growth": audit_growth,
            "audit_log_log_slope": round(slope, 3),
        },
        notes=[
            f"read: median over {READ_ROUNDS} rounds of the per-round ratio, the sizes read in"
            f" turn within each round ({READS_PER_BATCH} reads a batch)",
            f"audit per transfer x{audit_growth:.2f} from {smallest['transfers']:,} to"
            f" {largest['transfers']:,} (log-log slope {slope:.2f}; 1.0 is linear)",
        ],
    )
