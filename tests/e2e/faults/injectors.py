"""The faults, and a runner that injects them while the load is in flight and times the
recovery from each.

Recovery from an injection means: every event that was in flight when it struck is in the
inbox; a probe published just after it (a tick dated now under an id of its own, which fires
nothing: the load is dated years later) is too, so new work flows again; every notification
that was waiting in the outbox then has been published and marked; and for the scheduler, a
tick from the new leader has been applied. Faults are injected one at a time, each once the
one before has recovered, so each time is its own.

Restarting the RabbitMQ application stops the broker of the whole machine, which other test
sessions share: it is in a round only when asked for (`schedule(..., broker_restart=True)`,
`python -m tests.e2e.faults --broker-restart`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from messages.errors import PublishError
from messages.publisher import EventPublisher
from policy.tables import inbox, outbox
from testbed.stories import BASE
from tests.e2e.faults.processes import Cluster
from tests.e2e.faults.relay_crash import CRASH_EXIT_CODE
from tests.e2e.faults.servers import (
    backend_alive,
    backends_in_transaction,
    close_all_connections,
    restart_rabbit_app,
    terminate_engine_backends,
    vhost_of,
)
from workers.tick_publisher import tick_envelope

RECOVERY_TIMEOUT_S = 300.0
IDLE_WAIT_S = 300.0
TRANSACTION_WAIT_S = 30.0
RABBIT_HOLD_S = 1.0
TICK_LATENESS_S = 300.0
"""The schedulers' TICK_LATENESS_SECONDS: a wall-clock tick at T is dated T minus this."""

WORKER_SIGKILL = "worker_sigkill"
BROKER_CONNECTIONS_CLOSED = "broker_connections_closed"
BROKER_RESTART = "broker_restart"
DATABASE_CONNECTIONS_TERMINATED = "database_connections_terminated"
RELAY_CRASH_AFTER_PUBLISH = "relay_crash_after_publish"
RELAY_SIGKILL = "relay_sigkill"
SCHEDULER_SIGKILL = "scheduler_sigkill"

ROUND = (
    WORKER_SIGKILL,
    DATABASE_CONNECTIONS_TERMINATED,
    RELAY_CRASH_AFTER_PUBLISH,
    BROKER_CONNECTIONS_CLOSED,
    SCHEDULER_SIGKILL,
    WORKER_SIGKILL,
    RELAY_SIGKILL,
    DATABASE_CONNECTIONS_TERMINATED,
    RELAY_CRASH_AFTER_PUBLISH,
    WORKER_SIGKILL,
)
"""One round: every fault but the broker restart at least once, the worker kill three
times."""


def round_of(
    *, broker_restart: bool = False, left_out: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """A round, with the broker restart after the second worker kill when asked for, and
    without the faults `left_out`."""
    faults = ROUND
    if broker_restart:
        at = ROUND.index(RELAY_SIGKILL)
        faults = (*ROUND[:at], BROKER_RESTART, *ROUND[at:])
    return tuple(fault for fault in faults if fault not in left_out)


def schedule(
    rounds: int,
    *,
    first: float = 0.04,
    last: float = 0.9,
    broker_restart: bool = False,
    left_out: frozenset[str] = frozenset(),
) -> list[tuple[float, str]]:
    """The faults of `rounds` rounds, spread evenly over the load's progress."""
    one = round_of(broker_restart=broker_restart, left_out=left_out)
    faults = [fault for _ in range(rounds) for fault in one]
    step = (last - first) / max(1, len(faults) - 1)
    return [(first + step * index, fault) for index, fault in enumerate(faults)]


@dataclass
class Injection:
    fault: str
    at_progress: float
    in_flight: frozenset[str] = frozenset()
    detail: str = ""
    recovered_s: float | None = None
    problem: str | None = None


class InjectionFailed(AssertionError):
    """A fault could not be injected as asked, or the engine did not recover from it."""


def probe_envelope(number: int) -> dict[str, Any]:
    """A tick dated now under an id of its own, published as the engine's user: it fires
    nothing (the load is dated years later) and its inbox row says the intake and the
    workers run again, and that every event received before it was applied (a barrier)."""
    return {**tick_envelope(datetime.now(UTC)), "event_id": f"fault-probe-{number}"}


@dataclass
class FaultRunner:
    cluster: Cluster
    engine: Engine
    broker_url: str
    in_flight: Callable[[], frozenset[str]]
    plan: list[tuple[float, str]]
    scratch: Path
    seed: int = 8
    injections: list[Injection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vhost = vhost_of(self.broker_url)
        self._rng = random.Random(self.seed * 104729 + 3)
        self._next = 0
        self._busy: threading.Thread | None = None
        self._victims = 0

    def on_progress(self, fraction: float) -> None:
        """Called by the driver between publishes: start the next fault once it is due and
        the one before has recovered."""
        if self._next >= len(self.plan) or fraction < self.plan[self._next][0]:
            return
        if self._busy is not None and self._busy.is_alive():
            return
        fault = self.plan[self._next][1]
        self._next += 1
        injection = Injection(fault, fraction)
        self.injections.append(injection)
        self._busy = threading.Thread(
            target=self._inject, args=(injection,), name=f"fault-{fault}", daemon=True
        )
        self._busy.start()

    def finish(self) -> None:
        """Inject what the load ended before, then wait for the last recovery."""
        while True:
            if self._busy is not None:
                self._busy.join(IDLE_WAIT_S)
                if self._busy.is_alive():
                    raise InjectionFailed("a fault's recovery outlasted the wait")
            if self._next >= len(self.plan):
                return
            self.on_progress(1.0)

    def _inject(self, injection: Injection) -> None:
        try:
            unsent_upto = self._unsent_upto()
            began, extra = INJECTORS[injection.fault](self, injection)
            probe = self._send_probe()
            recovered = self._wait_recovered(injection, unsent_upto, extra, probe)
            injection.recovered_s = recovered - began
        except Exception as exc:  # recorded for the report; the oracle fails the run on it
            injection.problem = f"{type(exc).__name__}: {exc}"

    # What recovery waits for.

    def _unsent_upto(self) -> int:
        with self.engine.connect() as conn:
            seq: int | None = conn.execute(
                select(func.max(outbox.c.seq)).where(outbox.c.sent_at.is_(None))
            ).scalar_one()
        return int(seq or 0)

    def _send_probe(self) -> str:
        envelope = probe_envelope(len(self.injections))
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        # Its own connection: pika's are not shared between threads.
        with EventPublisher(self.broker_url, max_attempts=3, max_backoff_s=1.0) as publisher:
            while True:
                try:
                    publisher.publish(envelope)
                    return str(envelope["event_id"])
                except PublishError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def _wait_recovered(
        self,
        injection: Injection,
        unsent_upto: int,
        extra: Callable[[], bool] | None,
        probe: str,
    ) -> float:
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        waiting = {*injection.in_flight, probe}
        while True:
            if waiting:
                waiting -= self._in_inbox(waiting)
            if not waiting and self._sent_through(unsent_upto) and (extra is None or extra()):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise InjectionFailed(
                    f"no recovery after {RECOVERY_TIMEOUT_S}s: {sorted(waiting)[:5]} not applied"
                )
            time.sleep(0.02)

    def _in_inbox(self, event_ids: set[str]) -> set[str]:
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(inbox.c.event_id).where(inbox.c.event_id.in_(event_ids))
                ).scalars()
            )

    def _sent_through(self, seq: int) -> bool:
        with self.engine.connect() as conn:
            left = conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.sent_at.is_(None), outbox.c.seq <= seq)
            ).scalar_one()
        return int(left) == 0

    def _strike(self, injection: Injection) -> float:
        """The instant of the fault, with what was in flight at it."""
        injection.in_flight = self.in_flight()
        return time.monotonic()

    # The faults. Each returns when it struck, and what else recovery must wait for.

    def worker_sigkill(self, injection: Injection) -> tuple[float, Callable[[], bool] | None]:
        """SIGKILL a worker process while one of its transactions is open, start a new one."""
        workers = self.cluster.running("worker")
        victim = workers[self._victims % len(workers)]
        self._victims += 1
        deadline = time.monotonic() + TRANSACTION_WAIT_S
        while not (open_now := backends_in_transaction(self.engine, victim.application_name)):
            if time.monotonic() > deadline:
                raise InjectionFailed(f"{victim.name} opened no transaction in time")
            time.sleep(0.002)
        began = self._strike(injection)
        victim.kill()
        self.cluster.start("worker")
        gone = time.monotonic() + 30
        while any(backend_alive(self.engine, pid) for pid in open_now):
            if time.monotonic() > gone:
                raise InjectionFailed(f"backends {open_now} outlived {victim.name}")
            time.sleep(0.05)
        injection.detail = f"{victim.name} killed with {len(open_now)} open transaction(s)"
        return began, None

    def broker_connections_closed(
        self, injection: Injection
    ) -> tuple[float, Callable[[], bool] | None]:
        began = self._strike(injection)
        closed = close_all_connections(self.vhost)
        injection.detail = f"{closed} connection(s) closed"
        return began, None

    def broker_restart(self, injection: Injection) -> tuple[float, Callable[[], bool] | None]:
        began = self._strike(injection)
        restart = restart_rabbit_app(RABBIT_HOLD_S)
        injection.detail = f"broker down {restart.stopped_s:.1f}s"
        return began, None

    def database_connections_terminated(
        self, injection: Injection
    ) -> tuple[float, Callable[[], bool] | None]:
        began = self._strike(injection)
        ended = terminate_engine_backends(self.engine)
        injection.detail = f"{ended} backend(s) terminated"
        return began, None

    def relay_crash_after_publish(
        self, injection: Injection
    ) -> tuple[float, Callable[[], bool] | None]:
        """A relay that exits between publishing a batch and marking it sent."""
        record = self.scratch / f"relay-crash-{len(self.injections)}.txt"
        after = self._rng.randint(1, 4)
        crashing = self.cluster.start(
            "relay-crash",
            "--after",
            str(after),
            "--record",
            str(record),
            module="tests.e2e.faults.relay_crash",
        )
        code = crashing.process.wait(timeout=RECOVERY_TIMEOUT_S)
        began = self._strike(injection)
        if code != CRASH_EXIT_CODE or not record.exists():
            raise InjectionFailed(f"the crashing relay exited {code}: {crashing.log.read_text()}")
        published = set(record.read_text(encoding="utf-8").split())
        injection.detail = f"exited after publishing {len(published)}, before marking its batch"
        return began, lambda: self._all_marked(published)

    def _all_marked(self, notification_ids: set[str]) -> bool:
        with self.engine.connect() as conn:
            left = conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.notification_id.in_(notification_ids), outbox.c.sent_at.is_(None))
            ).scalar_one()
        return int(left) == 0

    def relay_sigkill(self, injection: Injection) -> tuple[float, Callable[[], bool] | None]:
        (relay,) = self.cluster.running("relay")
        began = self._strike(injection)
        relay.kill()
        self.cluster.start("relay")
        injection.detail = f"{relay.name} killed"
        return began, None

    def scheduler_sigkill(self, injection: Injection) -> tuple[float, Callable[[], bool] | None]:
        """SIGKILL the scheduler that holds the lock; the other must take over."""
        deadline = time.monotonic() + 30
        while not (
            leaders := [item for item in self.cluster.running("scheduler") if item.leading()]
        ):
            if time.monotonic() > deadline:
                raise InjectionFailed("no scheduler leads")
            time.sleep(0.05)
        (leader,) = leaders
        began = self._strike(injection)
        killed_at = datetime.now(UTC)
        leader.kill()
        self.cluster.start("scheduler")
        injection.detail = f"{leader.name} killed while leading"
        return began, lambda: self._scheduler_tick_after(killed_at)

    def _scheduler_tick_after(self, at: datetime) -> bool:
        """A tick from whichever scheduler leads now (wall-clock ticks, not the load's), sent
        after `at`: dated after `at` less the lateness."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(func.count())
                .select_from(inbox)
                .where(
                    inbox.c.type == "deadline.tick",
                    inbox.c.event_id.startswith("tick:"),  # a scheduler's, not a probe
                    inbox.c.occurred_at > at - timedelta(seconds=TICK_LATENESS_S),
                    inbox.c.occurred_at < BASE,
                )
            ).scalar_one()
        return int(found) > 0


INJECTORS: dict[
    str, Callable[[FaultRunner, Injection], tuple[float, Callable[[], bool] | None]]
] = {
    WORKER_SIGKILL: FaultRunner.worker_sigkill,
    BROKER_CONNECTIONS_CLOSED: FaultRunner.broker_connections_closed,
    BROKER_RESTART: FaultRunner.broker_restart,
    DATABASE_CONNECTIONS_TERMINATED: FaultRunner.database_connections_terminated,
    RELAY_CRASH_AFTER_PUBLISH: FaultRunner.relay_crash_after_publish,
    RELAY_SIGKILL: FaultRunner.relay_sigkill,
    SCHEDULER_SIGKILL: FaultRunner.scheduler_sigkill,
}
