"""Metrics: the engine's counters, the backlog gauges read at scrape time, the HTTP endpoint."""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, update

from policy.apply import ApplyResult
from policy.tables import outbox
from scheduler.clock import FixedClock
from scheduler.store import Deadline, schedule_deadline
from workers.database import make_engine
from workers.metrics import (
    BacklogCollector,
    EngineMetrics,
    MetricsPortTaken,
    MetricsServer,
    serve_metrics,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Ticker:
    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


def add_outbox_row(engine: Engine, number: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(outbox).values(
                notification_id=f"n{number}",
                type="dispute.opened",
                occurred_at=NOW - timedelta(days=30),
                body=json.dumps({"data": {}}),
                event_id=f"e{number}",
            )
        )


def mark_sent(engine: Engine, notification_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(outbox).where(outbox.c.notification_id == notification_id).values(sent_at=NOW)
        )


def scrape(metrics: EngineMetrics, name: str) -> float:
    return metrics.value(name)


def test_outbox_lag_is_how_long_the_oldest_unsent_row_has_been_seen_waiting(
    sqlite_engine: Engine,
) -> None:
    """The rows' event time (30 days ago) is not their age in the outbox."""
    metrics, ticker = EngineMetrics(), Ticker()
    metrics.registry.register(BacklogCollector(sqlite_engine, monotonic=ticker, max_age_seconds=0))
    add_outbox_row(sqlite_engine, 1)
    add_outbox_row(sqlite_engine, 2)

    assert scrape(metrics, "recourse_outbox_lag_seconds") == 0
    ticker.at += 7.5
    assert scrape(metrics, "recourse_outbox_lag_seconds") == 7.5
    assert scrape(metrics, "recourse_outbox_unsent") == 2

    mark_sent(sqlite_engine, "n1")
    ticker.at += 1
    assert scrape(metrics, "recourse_outbox_lag_seconds") == 0
    mark_sent(sqlite_engine, "n2")
    assert scrape(metrics, "recourse_outbox_unsent") == 0
    assert scrape(metrics, "recourse_outbox_lag_seconds") == 0


def test_deadline_lag_is_the_age_of_the_oldest_due_deadline_not_fired(
    sqlite_engine: Engine,
) -> None:
    metrics = EngineMetrics()
    metrics.registry.register(BacklogCollector(sqlite_engine, clock=FixedClock(NOW)))
    with sqlite_engine.begin() as conn:
        for kind, due_at in (
            ("a", NOW - timedelta(minutes=3)),
            ("b", NOW - timedelta(seconds=10)),
            ("c", NOW + timedelta(days=1)),
        ):
            schedule_deadline(conn, Deadline(kind, "s1", due_at, None, "e1"))

    assert scrape(metrics, "recourse_deadlines_due") == 2
    assert scrape(metrics, "recourse_deadline_lag_seconds") == 180
    assert scrape(metrics, "recourse_backlog_up") == 1


def test_a_database_that_cannot_be_read_reports_the_backlog_down(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    metrics = EngineMetrics()
    metrics.registry.register(BacklogCollector(engine))

    assert scrape(metrics, "recourse_backlog_up") == 0
    assert metrics.registry.get_sample_value("recourse_outbox_unsent") is None
    engine.dispose()


def test_results_count_by_type_and_result_and_rejections_by_reason() -> None:
    metrics = EngineMetrics()
    metrics.record_result(ApplyResult("e1", "withdrawal.requested", "applied"))
    metrics.record_result(
        ApplyResult("e2", "withdrawal.requested", "rejected", "insufficient_balance")
    )
    metrics.record_failure("refunds.events", "milestone.released", "dead_letter", "malformed")

    applied = {"type": "withdrawal.requested", "result": "applied"}
    assert metrics.value("recourse_events_total", applied) == 1
    assert metrics.value("recourse_rejections_total", {"reason": "insufficient_balance"}) == 1
    dead = {"queue": "refunds.events", "reason": "malformed"}
    assert metrics.value("recourse_dead_letters_total", dead) == 1
    dead_lettered = {"type": "milestone.released", "result": "dead_lettered"}
    assert metrics.value("recourse_events_total", dead_lettered) == 1


def test_the_endpoint_serves_the_registry_and_port_zero_serves_nothing() -> None:
    metrics = EngineMetrics()
    metrics.record_result(ApplyResult("e1", "contract.opened", "applied"))
    assert serve_metrics(metrics, 0) is None

    server = MetricsServer(metrics.registry, 0, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as response:
            text = response.read().decode()
    finally:
        server.close()

    assert 'recourse_events_total{result="applied",type="contract.opened"} 1.0' in text


def test_one_read_of_the_backlog_serves_scrapes_for_a_few_seconds(sqlite_engine: Engine) -> None:
    metrics, ticker = EngineMetrics(), Ticker()
    metrics.registry.register(BacklogCollector(sqlite_engine, monotonic=ticker, max_age_seconds=5))
    assert scrape(metrics, "recourse_outbox_unsent") == 0

    add_outbox_row(sqlite_engine, 1)
    ticker.at += 4.9
    assert scrape(metrics, "recourse_outbox_unsent") == 0
    ticker.at += 0.1
    assert scrape(metrics, "recourse_outbox_unsent") == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def served_series(server: MetricsServer) -> set[str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/metrics",
        # OpenMetrics names each family once, with no _total or _created suffix.
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    with urllib.request.urlopen(request) as response:
        text = response.read().decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE recourse_")}


ROLE_SERIES = {
    "worker": {
        "recourse_events",
        "recourse_rejections",
        "recourse_retries",
        "recourse_dead_letters",
        "recourse_message_duration_seconds",
        "recourse_messages_in_progress",
    },
    "relay": {
        "recourse_notifications_published",
        "recourse_refunded_minor",
        "recourse_backlog_up",
        "recourse_outbox_unsent",
        "recourse_outbox_lag_seconds",
    },
    "scheduler": {
        "recourse_ticks_published",
        "recourse_scheduler_leader",
        "recourse_backlog_up",
        "recourse_deadlines_due",
        "recourse_deadline_lag_seconds",
    },
}


@pytest.mark.parametrize("roles", [("worker",), ("relay",), ("scheduler",), ()])
def test_each_role_serves_its_own_series_only(
    roles: tuple[str, ...], sqlite_engine: Engine
) -> None:
    """No role given (`recourse run`): every series."""
    metrics = EngineMetrics()
    if roles:
        metrics.keep_only(*roles)
    # Series with labels appear once they have a sample.
    metrics.record_result(ApplyResult("e1", "withdrawal.requested", "rejected", "insufficient"))
    metrics.record_failure("refunds.events", "milestone.released", "retry", "outage")
    metrics.record_failure("refunds.events", "milestone.released", "dead_letter", "malformed")
    metrics.in_progress.labels("refunds.events", "apply").set(0)
    metrics.message_seconds.labels("refunds.events", "apply").observe(0.01)
    metrics.record_notification("refund.completed", '{"data": {}}')
    metrics.refunded.labels("USD").inc(0)
    server = serve_metrics(metrics, free_port(), backlog=BacklogCollector(sqlite_engine))
    assert server is not None
    try:
        served = served_series(server)
    finally:
        server.close()

    wanted = set().union(*(ROLE_SERIES[role] for role in roles or ROLE_SERIES))
    assert served == wanted


def test_the_endpoint_listens_on_127_0_0_1_unless_metrics_host_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("METRICS_HOST", raising=False)
    default = serve_metrics(EngineMetrics(), free_port())
    monkeypatch.setenv("METRICS_HOST", "0.0.0.0")
    everywhere = serve_metrics(EngineMetrics(), free_port())
    assert default is not None
    assert everywhere is not None
    default.close()
    everywhere.close()

    assert default.host == "127.0.0.1"
    assert everywhere.host == "0.0.0.0"


def test_a_port_in_use_is_an_error_naming_host_and_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(MetricsPortTaken) as caught:
            MetricsServer(EngineMetrics().registry, port, addr="127.0.0.1")

    assert str(caught.value) == (
        f"cannot serve metrics on 127.0.0.1:{port} (Address already in use); set METRICS_PORT "
        "to a free port (0 for no endpoint) or METRICS_HOST to an address of this host; each "
        "process on one host needs its own port"
    )
