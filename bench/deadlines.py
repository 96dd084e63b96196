"""Benchmark: one `deadline.tick` that fires DUE deadlines among STORED stored, on PostgreSQL.

    python bench/deadlines.py                          # 1,000 due among 1,000,000
    python bench/deadlines.py --stored 10000000        # among 10,000,000
    python bench/deadlines.py --url postgresql+psycopg://postgres@host/db

Without `--url` it makes a throwaway database on the local server and drops it afterwards;
with `--url` it uses that database (which should be empty) and leaves it. The stored rows are
inserted set-based: most have fired long ago (as in a table that has run for years), a tenth
wait in the future, and DUE fell due in the hour before the tick. It prints the claim's plan
(EXPLAIN ANALYZE) and how long the tick took, through the same `apply_event` the workers run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from messages.inbound import DeadlineTick, DeadlineTickEvent
from messages.notifications import MilestoneFinalized
from policy.apply import apply_event
from policy.config import load_policies
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome
from policy.ticks import DEADLINE_HANDLERS, fires
from scheduler.store import claim_query
from scheduler.tables import deadlines
from workers.database import make_engine, migrate

BENCH_KIND = "bench.finalize"
TICK_AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DEFAULT_ADMIN_URL = os.environ.get(
    "RECOURSE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _finalize(context: HandlerContext, subject_id: str) -> Outcome:
    # What SC-4's deadline writes at the least: one notification in the outbox.
    context.notify(
        ["dispute_team"],
        MilestoneFinalized(contract_id=context.contract_id or "bench", milestone_id=subject_id),
    )
    return APPLIED


def register() -> None:
    """Make the bench's deadline kind fireable (once, however often this module is loaded)."""
    if BENCH_KIND not in DEADLINE_HANDLERS:
        fires(BENCH_KIND)(_finalize)


@dataclass(frozen=True, slots=True)
class BenchResult:
    stored: int
    due: int
    fill_seconds: float
    tick_seconds: float
    fired: int
    plan: str


def fill(conn: Connection, *, stored: int, due: int, tick_at: datetime = TICK_AT) -> None:
    """Store `stored` deadlines of which `due` fall due in the hour before `tick_at`."""
    if not 0 <= due <= stored:
        raise ValueError("due must lie between 0 and stored")
    waiting = (stored - due) // 10
    fired = stored - due - waiting
    insert = text(
        """
        INSERT INTO deadlines (deadline_id, kind, subject_id, contract_id, due_at,
                               created_by_event, fired_at, fired_by_event, outcome)
        SELECT CAST(:kind AS text) || ':' || CAST(:prefix AS text) || n, :kind,
               CAST(:prefix AS text) || n, 'c' || (n % 5000),
               CAST(:tick_at AS timestamptz) + CAST(:step AS interval) * n,
               'e' || n,
               CASE WHEN :fired THEN CAST(:tick_at AS timestamptz) + CAST(:step AS interval) * n
               END,
               CASE WHEN :fired THEN 'old-tick' END,
               CASE WHEN :fired THEN 'fired' END
        FROM generate_series(1, CAST(:count AS bigint)) AS n
        """
    )
    for prefix, count, step, was_fired in (
        ("due-", due, "-1 second" if due <= 3600 else "-1 millisecond", False),
        ("waiting-", waiting, "1 minute", False),
        ("fired-", fired, "-1 second", True),
    ):
        if count:
            conn.execute(
                insert,
                {
                    "kind": BENCH_KIND,
                    "prefix": prefix,
                    "tick_at": tick_at,
                    "step": step,
                    "fired": was_fired,
                    "count": count,
                },
            )
    conn.execute(text("ANALYZE deadlines"))


def claim_plan(conn: Connection, *, tick_at: datetime = TICK_AT, analyze: bool = False) -> str:
    """PostgreSQL's plan for the claim a tick runs first, as text; ANALYZE runs it too (the
    caller rolls back, so nothing stays locked)."""
    from policy.ticks import CLAIM_BATCH

    query = claim_query(CLAIM_BATCH).params(tick_at=tick_at, kinds=sorted(DEADLINE_HANDLERS))
    compiled = query.compile(dialect=conn.dialect)
    # The statement as it runs: the kinds' list expanded into one parameter each.
    expanded = compiled.construct_expanded_state(compiled.params)
    options = "(ANALYZE, BUFFERS) " if analyze else ""
    rows = conn.exec_driver_sql(f"EXPLAIN {options}{expanded.statement}", expanded.parameters)
    return "\n".join(str(row[0]) for row in rows)


def tick(engine: Engine, *, at: datetime = TICK_AT) -> float:
    """Apply one `deadline.tick` at `at` and commit; the seconds it took."""
    event = DeadlineTickEvent(
        event_id=f"bench-tick-{uuid.uuid4().hex}",
        type="deadline.tick",
        occurred_at=at,
        schema_version=1,
        data=DeadlineTick(),
    )
    policies = load_policies()
    started = time.perf_counter()
    with engine.begin() as conn:
        apply_event(conn, event, policies)
    return time.perf_counter() - started


def run(engine: Engine, *, stored: int, due: int) -> BenchResult:
    """Fill a migrated, empty database, explain the claim, then time one tick."""
    register()
    started = time.perf_counter()
    with engine.begin() as conn:
        fill(conn, stored=stored, due=due)
    fill_seconds = time.perf_counter() - started
    with engine.connect() as conn, conn.begin() as transaction:
        plan = claim_plan(conn, analyze=True)
        transaction.rollback()
    tick_seconds = tick(engine)
    with engine.connect() as conn:
        fired = len(
            conn.execute(
                select(deadlines.c.deadline_id).where(deadlines.c.fired_by_event.like("bench-%"))
            ).all()
        )
    return BenchResult(stored, due, fill_seconds, tick_seconds, fired, plan)


def report(result: BenchResult) -> str:
    return "\n".join(
        [
            f"stored deadlines: {result.stored:,}  due at the tick: {result.due:,}",
            f"fill: {result.fill_seconds:.2f} s",
            f"claim plan (first batch):\n{result.plan}",
            f"one tick: {result.tick_seconds * 1000:.1f} ms, fired {result.fired:,} "
            f"({result.tick_seconds / max(result.fired, 1) * 1e6:.0f} us a deadline)",
        ]
    )


def _throwaway_database(admin_url: str) -> str:
    name = f"recourse_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin_url: str, url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time one deadline.tick on PostgreSQL.")
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--url", help="an empty PostgreSQL database to use (kept afterwards)")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args(argv)
    url = args.url or _throwaway_database(args.admin_url)
    engine = make_engine(url)
    try:
        migrate(engine)
        result = run(engine, stored=args.stored, due=args.due)
    finally:
        engine.dispose()
        if args.url is None:
            _drop_database(args.admin_url, url)
    print(report(result))
    return 0 if result.fired == result.due else 1


if __name__ == "__main__":
    sys.exit(main())
