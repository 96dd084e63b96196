"""The engine as deployed, for the benchmarks that go through the real workers: `recourse
worker` (and `recourse relay`) started as processes by their public command, on a throwaway
database and vhost, fed by `messages.publisher.EventPublisher` through the `refunds.events`
exchange (MESSAGES.md, "Transport")."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
from sqlalchemy import Engine, func, select

from messages import parse_event
from messages.ordering import ordering_key
from messages.publisher import EventPublisher
from messages.transport import INTAKE_QUEUE, declare_intake
from workers.database import make_engine, migrate
from workers.intake.tables import event_log

RECOURSE = [sys.executable, "-c", "from workers.cli import app; app()"]
# A worker process finishes its messages for up to 30 s, and its supervisor waits 40 s.
STOP_TIMEOUT_S = 45.0
POLL_S = 0.05
# One retry waits at most RETRY_MAX_BACKOFF_MS (60 s by default): a run with no commit for
# longer than two of them has an event that is dead-lettered or waits for a subject that never
# comes (it would go on retrying for UNKNOWN_SUBJECT_RETRY_SECONDS, 10 minutes, first).
STALL_S = 150.0
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class WorkerShape:
    """How the workers run: processes x threads, one database connection per thread."""

    processes: int
    threads: int

    @property
    def connections(self) -> int:
        return self.processes * self.threads

    def as_json(self) -> dict[str, int]:
        return {"processes": self.processes, "threads": self.threads}


def engine_env(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of an engine process: the servers, quiet logs, no metrics port."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        # Every event is logged at INFO; a benchmark measures the engine, not the terminal.
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "METRICS_PORT": "0",
        **extra,
    }


class EngineProcesses:
    """Running engine processes; stops them (SIGTERM, then SIGKILL) on close."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start `recourse ARGS...` as `name`."""
        return self.start_command(name, [*RECOURSE, *args])

    def start_command(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        """Start `command` as `name`, its output in `name`.log."""
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        self.processes[name] = process
        return process

    def close(self) -> None:
        # `--processes N` spawns children: note them first, so none outlives a killed parent.
        children = [child for process in self.processes.values() for child in _children(process)]
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        killed = False
        for process in self.processes.values():
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
                killed = True
        for pid in children if killed else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _children(process: subprocess.Popen[bytes]) -> list[int]:
    try:
        listed = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text("ascii")
    except OSError:
        return []
    return [int(pid) for pid in listed.split()]


@contextmanager
def running(
    database_url: str,
    broker_url: str,
    logs: Path,
    *,
    shape: WorkerShape,
    relay: bool = False,
    **settings: str,
) -> Iterator[EngineProcesses]:
    """Workers (and the relay) on a migrated database, stopped on the way out."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    processes = EngineProcesses(engine_env(database_url, broker_url, **settings), logs)
    try:
        processes.start(
            "worker",
            "worker",
            "--processes",
            str(shape.processes),
            "--threads",
            str(shape.threads),
        )
        if relay:
            processes.start("relay", "relay")
        yield processes
    finally:
        processes.close()


def handled(engine: Engine) -> int:
    """Events committed so far: the event log's rows that are no longer pending (applied,
    rejected, duplicate or dead-lettered events, and fired ticks), each marked in the
    transaction that applied it."""
    query = select(func.count()).select_from(event_log).where(event_log.c.status != "pending")
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


class Stalled(TimeoutError):
    """No event was committed for a while before the count was reached: one was refused at
    the intake (the `dead_letters` table) or its key is parked in a long retry, and waiting
    out the whole timeout would show nothing more."""


def wait_handled(
    engine: Engine, count: int, *, timeout_s: float, stall_s: float = STALL_S
) -> float:
    """Wait until `count` events are committed; the monotonic time it was seen. Raises
    TimeoutError after `timeout_s`, and `Stalled` as soon as no event has been committed for
    `stall_s` short of the count."""
    return wait_for_count(lambda: handled(engine), count, timeout_s=timeout_s, stall_s=stall_s)


def wait_for_count(
    current: Callable[[], int], count: int, *, timeout_s: float, stall_s: float
) -> float:
    """Poll `current` until it reaches `count` (see `wait_handled`)."""
    started = time.monotonic()
    deadline = started + timeout_s
    seen, moved = current(), started
    while seen < count:
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"{seen} of {count} events committed after {timeout_s:.0f} s")
        if now - moved > stall_s:
            raise Stalled(
                f"{seen} of {count} events committed, and none for {stall_s:.0f} s: look in the"
                " `dead_letters` and `parked_keys` tables and the workers' logs, which the"
                " benchmark keeps"
            )
        time.sleep(POLL_S)
        latest = current()
        if latest != seen:
            seen, moved = latest, time.monotonic()
    return time.monotonic()


Encoded = tuple[str, bytes]  # routing key (the ordering key), AMQP body


def encode(envelope: dict[str, Any]) -> Encoded:
    """The routing key and body `EventPublisher.publish` sends for `envelope`: its ordering key,
    and its canonical JSON (validated here, once, before any clock starts: an upstream service
    serializes its events as it pleases, and its CPU is not the engine's)."""
    event = parse_event(envelope)
    body = event.model_dump(mode="json", exclude_none=True)
    return ordering_key(event), json.dumps(body, separators=(",", ":")).encode("utf-8")


def publish_all(broker_url: str, messages: Iterable[Encoded]) -> int:
    """Publish every message to `refunds.events` as `EventPublisher.publish` does (persistent,
    mandatory, `user_id` the connection's user, a confirm each), in order; how many were sent."""
    sent = 0
    with EventPublisher(broker_url) as publisher:
        for routing_key, body in messages:
            publisher.publish_raw(body, routing_key=routing_key)
            sent += 1
    return sent


def declare_engine_queues(broker_url: str) -> None:
    """Declare the `refunds.events` exchange, the intake queue and their binding, as a worker
    does when it starts: a backlog can then be published before any worker runs."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        declare_intake(connection.channel())
    finally:
        connection.close()


def wait_consumers(
    broker_url: str, count: int, timeout_s: float = READY_TIMEOUT_S, *, queue: str = INTAKE_QUEUE
) -> None:
    """Wait until `count` consumers listen on the intake queue (every worker process runs one;
    RabbitMQ counts the single active consumer and those standing by alike)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(broker_url))
            try:
                declared = connection.channel().queue_declare(queue, passive=True)
                if declared.method.consumer_count >= count:
                    return
            finally:
                connection.close()
        except pika.exceptions.ChannelClosedByBroker:
            pass  # the queue is not declared yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} consumers on {queue}")
        time.sleep(0.2)


KEPT_MARK = "KEPT"


@contextmanager
def worker_logs() -> Iterator[Path]:
    """A folder for the workers' logs, removed after a run that finished and kept after one that
    failed (or that `keep_logs` marked): a run that never sees its last events committed has
    them retrying (an event whose subject was not there yet parks its key), and only the log
    says which."""
    folder = Path(tempfile.mkdtemp(prefix="recourse-bench-workers-"))
    try:
        yield folder
    except Exception as exc:
        exc.add_note(f"the workers' logs are kept in {folder}")
        raise
    if not (folder / KEPT_MARK).exists():
        shutil.rmtree(folder, ignore_errors=True)


def keep_logs(folder: Path, why: str) -> Path:
    """Keep `folder` (from `worker_logs`) after a run that finished: `why` goes in its KEPT."""
    (folder / KEPT_MARK).write_text(why + "\n", encoding="utf-8")
    return folder
