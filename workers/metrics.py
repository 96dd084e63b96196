"""Prometheus metrics of the engine, served on METRICS_HOST:METRICS_PORT.

Dramatiq's own Prometheus middleware is not used: it needs the `dramatiq` command's process
boot and forked exposition server, and prometheus_client's multiprocess mode, which is chosen
once at import. The workers run Dramatiq's `Worker` in process (see `workers.runtime`), so the
`MessageMetrics` middleware records the same per-message series into this registry, next to
the engine's own:

- `recourse_events_total{type,result}`: result is applied, rejected, duplicate, retried or
  dead_lettered;
- `recourse_rejections_total{reason}`, `recourse_dead_letters_total{queue,reason}`,
  `recourse_retries_total{queue,reason}`;
- `recourse_refunded_minor_total{currency}`: refunded amounts (fees excluded) as their
  notifications leave the outbox;
- `recourse_notifications_published_total{type}`, `recourse_ticks_published_total`;
- `recourse_message_duration_seconds{queue,actor}`, `recourse_messages_in_progress{...}`;
- read from the database at most every few seconds (`BacklogCollector`):
  `recourse_outbox_unsent`, `recourse_outbox_lag_seconds`, `recourse_deadlines_due`,
  `recourse_deadline_lag_seconds`, `recourse_backlog_up`;
- the process's own `process_*` and `python_info`.

Each process exports only its role's series (`EngineMetrics.keep_only`): a worker the message
series, a relay the notification series and the outbox gauges, a scheduler the tick series and
the deadline gauges; `recourse run` all of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from threading import Lock, Thread
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from policy.apply import ApplyResult
from policy.tables import outbox
from scheduler.clock import Clock, SystemClock
from scheduler.tables import deadlines
from workers.operator.errors import OperatorError

REFUND_AMOUNT_FIELDS = {"refund.completed": "refund_minor", "addon.refunded": "amount_minor"}
"""Notification type -> the field holding the refunded amount, fees excluded."""

WORKER, RELAY, SCHEDULER = "worker", "relay", "scheduler"
ROLES = frozenset({WORKER, RELAY, SCHEDULER})


class MetricsPortTaken(OperatorError):
    """The metrics endpoint cannot listen where the settings say."""


class EngineMetrics:
    """The counters and gauges of one process, on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.roles: frozenset[str] = ROLES
        # The process's CPU, memory and file descriptors, as on the default registry.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.events = Counter(
            "recourse_events",
            "Inbound events handled, by type and result.",
            ["type", "result"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "recourse_rejections",
            "Events refused by a rule, by reason code.",
            ["reason"],
            registry=self.registry,
        )
        self.retries = Counter(
            "recourse_retries",
            "Messages scheduled for another attempt, by queue and reason.",
            ["queue", "reason"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "recourse_dead_letters",
            "Messages moved to a dead-letter queue, by queue and reason.",
            ["queue", "reason"],
            registry=self.registry,
        )
        self.refunded = Counter(
            "recourse_refunded_minor",
            "Refunded amounts in minor units, fees excluded, by currency.",
            ["currency"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "recourse_notifications_published",
            "Notifications the relay published, by type.",
            ["type"],
            registry=self.registry,
        )
        self.ticks = Counter(
            "recourse_ticks_published",
            "deadline.tick events the scheduler published.",
            registry=self.registry,
        )
        self.scheduler_leader = Gauge(
            "recourse_scheduler_leader",
            "1 while this process holds the scheduler lock and publishes ticks.",
            registry=self.registry,
        )
        self.message_seconds = Histogram(
            "recourse_message_duration_seconds",
            "Time spent processing one message, by queue and actor.",
            ["queue", "actor"],
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "recourse_messages_in_progress",
            "Messages being processed now, by queue and actor.",
            ["queue", "actor"],
            registry=self.registry,
        )

        self._by_role: dict[str, list[Collector]] = {
            WORKER: [
                self.events,
                self.rejections,
                self.retries,
                self.dead_letters,
                self.message_seconds,
                self.in_progress,
            ],
            RELAY: [self.notifications, self.refunded],
            SCHEDULER: [self.ticks, self.scheduler_leader],
        }

    def keep_only(self, *roles: str) -> None:
        """Export only the series of `roles` (worker, relay, scheduler); the others keep
        counting in memory, unseen, so the code that records them needs no role checks."""
        unknown = set(roles) - ROLES
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; choose from {sorted(ROLES)}")
        for role in self.roles - set(roles):
            for collector in self._by_role[role]:
                self.registry.unregister(collector)
        self.roles = self.roles & frozenset(roles)

    def record_result(self, result: ApplyResult) -> None:
        self.events.labels(result.type, result.status).inc()
        if result.reason is not None:
            self.rejections.labels(result.reason).inc()

    def record_failure(self, queue: str, event_type: str, action: str, reason: str) -> None:
        """A failed attempt: `action` is retry or dead_letter."""
        if action == "retry":
            self.retries.labels(queue, reason).inc()
            self.events.labels(event_type, "retried").inc()
        else:
            self.dead_letters.labels(queue, reason).inc()
            self.events.labels(event_type, "dead_lettered").inc()

    def record_notification(self, notification_type: str, body: str) -> None:
        self.notifications.labels(notification_type).inc()
        field = REFUND_AMOUNT_FIELDS.get(notification_type)
        if field is None:
            return
        data = json.loads(body).get("data", {})
        amount, currency = data.get(field), data.get("currency")
        if isinstance(amount, int) and isinstance(currency, str):
            self.refunded.labels(currency).inc(amount)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent): for tests and the health command."""
        found = self.registry.get_sample_value(name, labels or {})
        return found if found is not None else 0.0


class Monotonic(Protocol):
    def __call__(self) -> float: ...


BACKLOG_MAX_AGE_S = 5.0
"""How long one read of the backlog serves scrapes: Prometheus and a dashboard scraping every
second cost the database one query pair per this many seconds."""


class BacklogCollector(Collector):
    """Gauges read from the database: what waits in the outbox (the relay's) and the deadline
    store (the scheduler's), and for how long. One read serves every scrape for
    `max_age_seconds`.

    Outbox rows carry their event's time, not the time they were written (an event may be
    published late), so the outbox lag is measured from when this collector first saw the
    current oldest unsent row: it grows while the relay is stuck on it, and is 0 at the first
    read. Deadline lag is how far the oldest due, unfired deadline is behind the clock.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        monotonic: Monotonic = time.monotonic,
        roles: frozenset[str] = frozenset({RELAY, SCHEDULER}),
        max_age_seconds: float = BACKLOG_MAX_AGE_S,
    ) -> None:
        self._engine = engine
        self._clock = clock or SystemClock()
        self._monotonic = monotonic
        self._roles = roles
        self._max_age_s = max_age_seconds
        self._head: tuple[int, float] | None = None
        self._last: tuple[float, list[Metric]] | None = None
        self._lock = Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self._monotonic()
            if self._last is None or now - self._last[0] >= self._max_age_s:
                self._last = (now, self._read_gauges(now))
            gauges = self._last[1]
        yield from gauges

    def restrict_to(self, roles: frozenset[str]) -> None:
        """Read and export only the gauges of `roles` (relay: outbox, scheduler: deadlines)."""
        with self._lock:
            self._roles = self._roles & roles
            self._last = None

    def _read_gauges(self, monotonic_now: float) -> list[Metric]:
        now = self._clock.now()
        up = "1 when the backlog gauges could be read."
        try:
            unsent, oldest_seq, due, oldest_due = self._read(now)
        except SQLAlchemyError:
            return [_gauge("recourse_backlog_up", up, 0)]
        gauges: list[Metric] = [_gauge("recourse_backlog_up", up, 1)]
        if RELAY in self._roles:
            gauges.append(
                _gauge("recourse_outbox_unsent", "Notifications not yet published.", unsent)
            )
            gauges.append(
                _gauge(
                    "recourse_outbox_lag_seconds",
                    "How long the oldest unsent notification has been waiting, as seen by this "
                    "process.",
                    self._outbox_lag(oldest_seq, monotonic_now),
                )
            )
        if SCHEDULER in self._roles:
            gauges.append(_gauge("recourse_deadlines_due", "Deadlines due and not fired yet.", due))
            lag = (now - oldest_due).total_seconds() if oldest_due is not None else 0.0
            gauges.append(
                _gauge(
                    "recourse_deadline_lag_seconds",
                    "Age of the oldest deadline that is due and not fired yet.",
                    max(lag, 0.0),
                )
            )
        return gauges

    def _read(self, now: datetime) -> tuple[int, int | None, int, datetime | None]:
        unsent: Any = (0, None)
        due: Any = (0, None)
        with self._engine.connect() as conn:
            if RELAY in self._roles:
                unsent = conn.execute(
                    select(func.count(), func.min(outbox.c.seq)).where(outbox.c.sent_at.is_(None))
                ).one()
            if SCHEDULER in self._roles:
                due = conn.execute(
                    select(func.count(), func.min(deadlines.c.due_at)).where(
                        deadlines.c.fired_at.is_(None), deadlines.c.due_at <= now
                    )
                ).one()
        return unsent[0], unsent[1], due[0], due[1]

    def _outbox_lag(self, oldest_seq: int | None, now: float) -> float:
        if oldest_seq is None:
            self._head = None
            return 0.0
        if self._head is None or self._head[0] != oldest_seq:
            self._head = (oldest_seq, now)
        return now - self._head[1]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class MetricsServer:
    """The HTTP endpoint of a registry; `close()` stops it."""

    def __init__(self, registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> None:
        try:
            server, thread = start_http_server(port, addr=addr, registry=registry)
        except OSError as exc:
            where = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
            raise MetricsPortTaken(
                f"cannot serve metrics on {where} ({exc.strerror or exc})",
                "set METRICS_PORT to a free port (0 for no endpoint) or METRICS_HOST to an "
                "address of this host; each process on one host needs its own port",
            ) from None
        self._server: Any = server
        self._thread: Thread = thread
        self.host: str = str(server.server_address[0])
        self.port: int = server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(
    metrics: EngineMetrics,
    port: int,
    *,
    host: str | None = None,
    backlog: BacklogCollector | None = None,
) -> MetricsServer | None:
    """Serve `metrics` (and the backlog gauges of its roles, when given) on `host:port`; port 0
    serves nothing. `host` defaults to the METRICS_HOST setting."""
    if port == 0:
        return None
    if backlog is not None and metrics.roles & {RELAY, SCHEDULER}:
        backlog.restrict_to(metrics.roles)
        metrics.registry.register(backlog)
    if host is None:
        from workers.settings import load_settings

        host = load_settings().metrics_host
    return MetricsServer(metrics.registry, port, addr=host)
