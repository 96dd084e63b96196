"""The console's dispute queue with many disputes stored (PostgreSQL).

One database, filled set-based (`generate_series`) straight into the tables the queue reads:
a contract, a milestone and a dispute per row, spread as a marketplace's would be: seven in
ten disputes open and opened over the last ten days (about half past the five-day SLA), the
rest resolved over the year before, at stake from 10.00 to 5,000.00, the two presets' policies
two to one. The console app renders the queue page over HTTP (Starlette's test client, in this
process, signed in as a finance operator) for the first page and for a keyset page nine tenths
deep, with and without filters, many times each; the same requests' SQL is then run under
`EXPLAIN ANALYZE` to show which indexes it reads.

Headline: the deep page's median over the first page's (flat is 1.0: a keyset page costs the
same wherever it starts).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from starlette.testclient import TestClient

from bench.results import BenchResult
from bench.servers import pg_database
from console.accounts import add_operator
from console.app import create_app
from console.publishing import embedded_publisher
from console.roles import Role
from console.settings import ConsoleSettings
from policy.config import load_policies
from workers.database import make_engine, migrate
from workers.operator.formats import iso

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
REQUESTS = 40
DEEP = 0.9
"""Where the deep page starts: after nine tenths of the rows its filters match."""
GOAL_DEEP_OVER_FIRST = 2.0
OPERATOR, PASSWORD = "bench-finance", "bench password of the queue"
SECRET = "console-queue-bench-secret-of-48-characters-xxxx"
FILTERED = {"policy": "cadcrowd", "min_minor": "100000"}
"""A third of the disputes are cadcrowd's and four in five have 1,000.00 or more at stake."""

_FILL = (
    """
    INSERT INTO contracts (contract_id, kind, client_id, creator_id, currency, policy,
                           opened_at, paid_total_minor, refunded_total_minor)
    SELECT 'qc' || lpad(n::text, 7, '0'), 'fixed', 'client' || (n % 5000),
           'creator' || (n % 3000), 'USD',
           CASE WHEN n % 3 = 0 THEN 'cadcrowd' ELSE 'spectrum' END,
           CAST(:now AS timestamptz) - make_interval(days => 400), 1000 + (n * 104729) % 499000,
           0
    FROM generate_series(1, CAST(:size AS bigint)) AS n
    """,
    """
    INSERT INTO targets (target_id, kind, contract_id, payment_id, currency, amount_minor,
                         paid_at, work_started_at, status)
    SELECT 'qm' || lpad(n::text, 7, '0'), 'milestone', 'qc' || lpad(n::text, 7, '0'),
           'qp' || lpad(n::text, 7, '0'), 'USD', 1000 + (n * 104729) % 499000,
           CAST(:now AS timestamptz) - make_interval(days => 380),
           CAST(:now AS timestamptz) - make_interval(days => 379),
           CASE WHEN n % 10 < 7 THEN 'funded' ELSE 'released' END
    FROM generate_series(1, CAST(:size AS bigint)) AS n
    """,
    # Open: opened over the last 10 days; resolved: over the 355 days before, in 0-5 days.
    """
    INSERT INTO disputes (dispute_id, contract_id, target_id, reason, opened_at, status,
                          resolved_at, outcome, decided_by)
    SELECT 'qd' || lpad(n::text, 7, '0'), 'qc' || lpad(n::text, 7, '0'),
           'qm' || lpad(n::text, 7, '0'), 'the work was not what was ordered',
           opened_at, CASE WHEN open THEN 'open' ELSE 'resolved' END,
           CASE WHEN open THEN NULL ELSE opened_at + make_interval(secs => (n * 31) % 432000) END,
           CASE WHEN open THEN NULL ELSE 'release_to_creator' END,
           CASE WHEN open THEN NULL ELSE 'operator' || (n % 7) END
    FROM (
        SELECT n, n % 10 < 7 AS open,
               CAST(:now AS timestamptz) - CASE WHEN n % 10 < 7
                   THEN make_interval(secs => (n * 7919) % 864000)
                   ELSE make_interval(days => 10, secs => (n * 7919) % 30672000) END
               AS opened_at
        FROM generate_series(1, CAST(:size AS bigint)) AS n
    ) AS spread
    """,
)

_PLAN_INDEX = re.compile(r"Index (?:Only )?Scan(?: Backward)? using (\w+) on (\w+)")
_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    params: dict[str, str]


def _fill(engine: Engine, size: int) -> float:
    migrate(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in _FILL:
            conn.execute(text(statement), {"now": NOW, "size": size})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("contracts", "targets", "disputes"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    return time.perf_counter() - started


def _deep_cursor(conn: Connection, *, status: str | None, filtered: bool) -> str:
    """The cursor an operator paging through the queue would hold nine tenths of the way."""
    where = "d.status = :status" if status else "TRUE"
    if filtered:
        where += " AND c.policy = :policy AND t.amount_minor - t.refunded_minor >= :min_minor"
    matching = f"""
        FROM disputes AS d JOIN contracts AS c USING (contract_id)
        JOIN targets AS t ON t.target_id = d.target_id WHERE {where}
    """
    values = {
        "status": status,
        "policy": FILTERED["policy"],
        "min_minor": int(FILTERED["min_minor"]),
    }
    count: int = conn.execute(text(f"SELECT count(*) {matching}"), values).scalar_one()
    row = conn.execute(
        text(
            f"SELECT d.opened_at, d.dispute_id {matching} "
            "ORDER BY d.opened_at, d.dispute_id OFFSET :skip LIMIT 1"
        ),
        {**values, "skip": int(count * DEEP)},
    ).one()
    return f"{iso(row.opened_at)}|{row.dispute_id}"


def _scenarios(engine: Engine) -> list[Scenario]:
    with engine.connect() as conn:
        deep = _deep_cursor(conn, status="open", filtered=False)
        deep_filtered = _deep_cursor(conn, status="open", filtered=True)
        deep_resolved = _deep_cursor(conn, status="resolved", filtered=False)
        deep_all = _deep_cursor(conn, status=None, filtered=False)
    return [
        Scenario("first page", {}),
        Scenario("first page, overdue, cadcrowd, >= 1,000.00", {"status": "overdue", **FILTERED}),
        Scenario("deep page", {"after": deep}),
        Scenario("deep page, cadcrowd, >= 1,000.00", {"after": deep_filtered, **FILTERED}),
        Scenario("deep page, resolved", {"status": "resolved", "after": deep_resolved}),
        Scenario("deep page, every status", {"status": "all", "after": deep_all}),
    ]


def _signed_in(engine: Engine) -> TestClient:
    policies = load_policies()
    with engine.begin() as conn:
        add_operator(conn, OPERATOR, Role.FINANCE, PASSWORD, at=NOW)
    app = create_app(
        engine,
        policies,
        embedded_publisher(engine, policies),
        ConsoleSettings(),
        secret_key=SECRET,
        clock=lambda: NOW,
    )
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text)
    assert token is not None
    signed = client.post(
        "/signin",
        data={"name": OPERATOR, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    if signed.status_code != 303:
        raise RuntimeError(f"the bench operator could not sign in: {signed.status_code}")
    return client


def _request(client: TestClient, scenario: Scenario) -> tuple[float, int]:
    """One render of the queue page: its seconds and the disputes it listed."""
    started = time.perf_counter()
    page = client.get("/disputes", params=scenario.params)
    seconds = time.perf_counter() - started
    if page.status_code != 200:
        raise RuntimeError(f"{scenario.name}: the queue answered {page.status_code}")
    return seconds, page.text.count('<tr class="')


def _render(client: TestClient, scenarios: list[Scenario], requests: int) -> list[dict[str, Any]]:
    """Each scenario `requests` times, the scenarios in turn within each round so that the
    machine's load drifts over all of them alike."""
    timings: dict[str, list[float]] = {scenario.name: [] for scenario in scenarios}
    rows: dict[str, int] = {}
    for _ in range(requests):
        for scenario in scenarios:
            seconds, rows[scenario.name] = _request(client, scenario)
            timings[scenario.name].append(seconds)
    pages = []
    for scenario in scenarios:
        ordered = sorted(timings[scenario.name])
        pages.append(
            {
                "scenario": scenario.name,
                "params": scenario.params,
                "rows": rows[scenario.name],
                "median_ms": round(statistics.median(ordered) * 1e3, 2),
                "p95_ms": round(ordered[max(0, math.ceil(len(ordered) * 0.95) - 1)] * 1e3, 2),
            }
        )
    return pages


@contextmanager
def _queue_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL (and its parameters) the console runs against `disputes` meanwhile."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM disputes" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def _explain(engine: Engine, client: TestClient, scenario: Scenario) -> dict[str, Any]:
    with _queue_statements(engine) as seen:
        client.get("/disputes", params=scenario.params)
    statement, parameters = seen[0]
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", parameters)
        lines = [row[0] for row in plan]
        conn.rollback()
    joined = "\n".join(lines)
    return {
        "scenario": scenario.name,
        "statements": len(seen),
        "indexes": sorted({f"{index} on {table}" for index, table in _PLAN_INDEX.findall(joined)}),
        "seq_scans": sorted(set(_SEQ_SCAN.findall(joined))),
        "plan": lines,
    }


def run(size: int, requests: int = REQUESTS) -> BenchResult:
    """Store `size` disputes, then render each scenario `requests` times."""
    with ExitStack() as stack:
        engine = make_engine(stack.enter_context(pg_database()))
        stack.callback(engine.dispose)
        fill_seconds = _fill(engine, size)
        scenarios = _scenarios(engine)
        client = stack.enter_context(_signed_in(engine))
        _render(client, scenarios, 2)  # untimed: templates compiled, statements cached
        timed = _render(client, scenarios, requests)
        plans = [_explain(engine, client, scenario) for scenario in scenarios]
    first, deep = timed[0], timed[2]
    ratio = deep["median_ms"] / first["median_ms"]
    full_scans = sorted({table for plan in plans for table in plan["seq_scans"]})
    return BenchResult(
        name="console_queue",
        figure=(
            f"deep page {deep['median_ms']:.0f} ms (p95 {deep['p95_ms']:.0f}) of {size:,} disputes"
        ),
        reference=f"first page {first['median_ms']:.0f} ms (p95 {first['p95_ms']:.0f})",
        ratio=ratio,
        goal=f"deep over first <= {GOAL_DEEP_OVER_FIRST}; no sequential scan",
        met=ratio <= GOAL_DEEP_OVER_FIRST and not full_scans,
        metrics={
            "disputes": size,
            "fill_s": round(fill_seconds, 2),
            "requests": requests,
            "pages": timed,
            "plans": plans,
        },
        notes=[
            f"median and p95 of {requests} renders of /disputes each, the pages in turn in"
            " each round; in-process HTTP (Starlette's test client), signed in",
            f"sequential scans: {', '.join(full_scans) or 'none'}",
        ],
    )
