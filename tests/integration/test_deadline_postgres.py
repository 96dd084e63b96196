"""Deadlines on PostgreSQL: concurrent ticks never fire a deadline twice (SKIP LOCKED), the
claim walks the `deadlines_due` index however many rows are stored, and the benchmark runs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Engine, select

from messages import parse_event
from policy import ticks
from policy.apply import ApplyResult, apply_event
from policy.config import load_policies
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome
from policy.ticks import fires
from scheduler.store import Deadline, schedule_deadline
from scheduler.tables import deadlines
from store.pipelining import deferred_writes

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "deadlines.py"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONCURRENT = "test.postgres.concurrent"

FIRED: Counter[str] = Counter()
FIRED_LOCK = threading.Lock()
# Each tick's first firing waits here for the other tick's: both hold claimed rows at once.
BOTH_TICKS_INSIDE = threading.Barrier(2, timeout=20)
WAITED: set[int] = set()


@fires(CONCURRENT)
def _count(context: HandlerContext, subject_id: str) -> Outcome:
    thread = threading.get_ident()
    if thread not in WAITED:
        WAITED.add(thread)
        BOTH_TICKS_INSIDE.wait()
    with FIRED_LOCK:
        FIRED[subject_id] += 1
    return APPLIED


def load_bench() -> ModuleType:
    # bench/ is a folder of scripts, not an installed package: load the file itself, once.
    name = "bench_deadlines"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def tick(engine: Engine, event_id: str, at: datetime) -> ApplyResult:
    body = {
        "event_id": event_id,
        "type": "deadline.tick",
        "occurred_at": at.isoformat(),
        "schema_version": 1,
        "data": {},
    }
    with engine.begin() as conn, deferred_writes(conn):
        return apply_event(conn, parse_event(body), load_policies())


def test_two_concurrent_ticks_never_fire_the_same_deadline_twice(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so that each tick claims several while the other holds its own.
    monkeypatch.setattr(ticks, "CLAIM_BATCH", 25)
    FIRED.clear()
    WAITED.clear()
    BOTH_TICKS_INSIDE.reset()
    subjects = [f"s{n:03d}" for n in range(120)]
    with pg_engine.begin() as conn:
        for n, subject in enumerate(subjects):
            schedule_deadline(
                conn,
                Deadline(
                    kind=CONCURRENT,
                    subject_id=subject,
                    due_at=T0 + timedelta(seconds=n),
                    contract_id=None,
                    created_by_event="setup",
                ),
            )
    results: dict[str, ApplyResult] = {}
    errors: list[BaseException] = []

    def run(event_id: str) -> None:
        try:
            results[event_id] = tick(pg_engine, event_id, T0 + timedelta(hours=1))
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("tick-a", "tick-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert {result.status for result in results.values()} == {"applied"}
    assert Counter(subjects) == FIRED
    with pg_engine.connect() as conn:
        by_tick = Counter(conn.execute(select(deadlines.c.fired_by_event)).scalars())
    # Both ticks fired some (the barrier proves they overlapped), and together all, once.
    assert set(by_tick) == {"tick-a", "tick-b"}
    assert sum(by_tick.values()) == len(subjects)


def test_the_claim_walks_the_deadlines_due_index_among_200000_rows(pg_engine: Engine) -> None:
    bench = load_bench()
    bench.register()
    with pg_engine.begin() as conn:
        bench.fill(conn, stored=200_000, due=1_000)
        plan = bench.claim_plan(conn, analyze=True)
    assert "Index Scan using deadlines_due on deadlines" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


def test_the_deadline_benchmark_runs_a_tick_at_a_small_size(pg_url: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(BENCH), "--url", pg_url, "--stored", "10000", "--due", "1000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    assert "fired 1,000" in completed.stdout
    assert "Index Scan using deadlines_due" in completed.stdout
