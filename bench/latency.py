"""Latency from publish to notification: p50, p95 and p99 at half the maximum throughput.

Workers and `recourse relay` run as processes; a consumer process binds a queue of its own to
the `refunds.notifications` exchange (`#`) and stamps each notification as it arrives. The
publisher sends the workload at a steady rate (half the throughput measured in the same run)
and stamps each event just before its publish. An event's latency is from that stamp to the
first notification it caused (its `notification_id` starts with the event id). Both stamps
are CLOCK_MONOTONIC, which every process on the machine shares. Before the clock starts, the
same pace runs for `WARM_UP_S` on contracts of their own and is waited out, so the figures are
the steady state's; contracts run side by side so that one contract's events stay
`CONTRACT_SPACING_S` apart.

The reference is RabbitMQ alone at the same rate: a message published with a confirm to the
same exchange and received by the same consumer, so the ratio shows what the engine adds to
the two broker hops every event makes anyway.
"""

from __future__ import annotations

import math
import multiprocessing
import statistics
import time
from itertools import islice
from typing import Any

import pika
from sqlalchemy import Engine, func, select

from bench.deployment import (
    READY_TIMEOUT_S,
    WorkerShape,
    encode,
    keep_logs,
    running,
    wait_consumers,
    wait_handled,
    worker_logs,
)
from bench.results import BenchResult
from bench.servers import pg_database, rabbit_vhost
from messages.publisher import EventPublisher
from messages.transport import NOTIFICATIONS_EXCHANGE
from policy.tables import outbox
from testbed import workload
from workers.database import make_engine

GOAL_P99_MS = 250.0
CONSUMER_QUEUE = "bench.latency"
SETTLE_S = 0.5
# Fewer contracts side by side than elsewhere, so that even a short run reaches the events
# that notify (refunds, disputes) after its first contracts open...
WINDOW = 8
# ...but never so few that two events of one contract come closer than this. A contract's
# events are people's actions, seconds to days apart; closer than a commit, competing workers
# may apply them out of order (docs/performance.md, "Out of order"), which is a known limit of
# the engine, not its latency.
CONTRACT_SPACING_S = 0.25
# Events sent and committed before the clock starts: the first events of a worker thread pay
# for its connection and its compiled statements.
WARM_UP_S = 2.0
RELAY_IDLE_SECONDS = "0.01"


def _consume(broker_url: str, ready: Any, stop: Any, out: Any) -> None:
    """Stamp every notification until `stop` is set; send [(id, stamp)] to `out`."""
    received: list[tuple[str, float]] = []
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    channel.exchange_declare(NOTIFICATIONS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(CONSUMER_QUEUE, exclusive=True)
    channel.queue_bind(CONSUMER_QUEUE, NOTIFICATIONS_EXCHANGE, routing_key="#")
    channel.basic_qos(prefetch_count=1000)
    ready.set()
    for method, properties, _body in channel.consume(
        CONSUMER_QUEUE, auto_ack=True, inactivity_timeout=0.1
    ):
        if method is not None and properties.message_id:
            received.append((properties.message_id, time.monotonic()))
        elif stop.is_set():
            break
    connection.close()
    out.put(received)


class Consumer:
    """The consumer process; `stop()` returns what it received."""

    def __init__(self, broker_url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Event()
        self._stop = context.Event()
        self._out: Any = context.Queue()
        self._process = context.Process(
            target=_consume, args=(broker_url, self._ready, self._stop, self._out)
        )
        self._process.start()
        if not self._ready.wait(READY_TIMEOUT_S):
            raise TimeoutError("the notification consumer did not start")

    def stop(self) -> list[tuple[str, float]]:
        self._stop.set()
        received: list[tuple[str, float]] = self._out.get(timeout=READY_TIMEOUT_S)
        self._process.join(READY_TIMEOUT_S)
        return received


def _paced(
    broker_url: str, messages: list[tuple[str, str, bytes]], rate: float
) -> dict[str, float]:
    """Publish (id, routing key, body) at `rate` a second; {id: stamp just before its
    publish}."""
    sent: dict[str, float] = {}
    with EventPublisher(broker_url) as publisher:
        started = time.monotonic()
        for number, (message_id, routing_key, body) in enumerate(messages):
            due = started + number / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent[message_id] = time.monotonic()
            publisher.publish_raw(body, routing_key=routing_key)
    return sent


def _wait_relayed(database_url: str, count: int) -> None:
    """Wait until `count` events are committed and the relay has sent every notification."""
    engine = make_engine(database_url)
    try:
        wait_handled(engine, count, timeout_s=max(READY_TIMEOUT_S, count / 10))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _unsent(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        engine.dispose()
    # What the relay published last is still on its way to the consumer.
    time.sleep(SETTLE_S)


def _unsent(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(conn.execute(query).scalar_one())


def _percentiles(latencies_s: list[float]) -> dict[str, float]:
    if len(latencies_s) < 2:
        only = latencies_s[0] * 1000 if latencies_s else 0.0
        return {"p50_ms": only, "p95_ms": only, "p99_ms": only, "max_ms": only}
    cuts = statistics.quantiles(latencies_s, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 2),
        "p95_ms": round(cuts[94] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "max_ms": round(max(latencies_s) * 1000, 2),
    }


def window_for(rate: float) -> int:
    """Contracts side by side at `rate`: each contract's events `CONTRACT_SPACING_S` apart."""
    return max(WINDOW, math.ceil(rate * CONTRACT_SPACING_S))


def _messages(prefix: str, count: int, rate: float) -> list[tuple[str, str, bytes]]:
    envelopes = islice(workload.events(count, prefix=prefix, window=window_for(rate)), count)
    return [(envelope["event_id"], *encode(envelope)) for envelope in envelopes]


def measure_engine(rate: float, seconds: float, shape: WorkerShape) -> dict[str, Any]:
    count = max(1, int(rate * seconds))
    warm_up = max(1, int(rate * WARM_UP_S))
    warm_up_messages = _messages("warm", warm_up, rate)
    messages = _messages("lat", count, rate)
    with worker_logs() as logs:
        with (
            pg_database() as database_url,
            rabbit_vhost() as broker_url,
            running(
                database_url,
                broker_url,
                logs,
                shape=shape,
                relay=True,
                RELAY_IDLE_SECONDS=RELAY_IDLE_SECONDS,
            ),
        ):
            consumer = Consumer(broker_url)
            # The workers declare the exchange and the intake queue as they start.
            wait_consumers(broker_url, shape.processes)
            _paced(broker_url, warm_up_messages, rate)
            _wait_relayed(database_url, warm_up)
            sent = _paced(broker_url, messages, rate)
            _wait_relayed(database_url, warm_up + count)
            received = consumer.stop()
        figures = _engine_figures(rate, count, sent, received)
        if figures["p99_ms"] >= GOAL_P99_MS:
            # A run that finished but missed the goal: its workers' logs (retries are logged)
            # say whether events waited for a retry or the machine stalled.
            figures["worker_logs"] = str(keep_logs(logs, f"p99 {figures['p99_ms']} ms"))
    return figures | {"warm_up_events": warm_up, "contracts_side_by_side": window_for(rate)}


def _engine_figures(
    rate: float, count: int, sent: dict[str, float], received: list[tuple[str, float]]
) -> dict[str, Any]:
    first: dict[str, float] = {}
    for notification_id, stamp in received:
        event_id = notification_id.partition(":")[0]
        if event_id in sent and (event_id not in first or stamp < first[event_id]):
            first[event_id] = stamp
    latencies = [first[event_id] - sent[event_id] for event_id in first]
    return {
        "rate_per_s": round(rate, 1),
        "events": count,
        "events_with_notifications": len(latencies),
        "notifications": len(received),
    } | _percentiles(latencies)


def measure_broker(rate: float, count: int) -> dict[str, Any]:
    """RabbitMQ alone: publish with confirms to the exchange, receive in the consumer."""
    with rabbit_vhost() as broker_url:
        consumer = Consumer(broker_url)
        messages = [(f"ref-{number}", "", b"{}") for number in range(count)]
        sent: dict[str, float] = {}
        connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        channel = connection.channel()
        channel.confirm_delivery()
        started = time.monotonic()
        for number, (message_id, _routing_key, body) in enumerate(messages):
            pause = started + number / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent[message_id] = time.monotonic()
            channel.basic_publish(
                NOTIFICATIONS_EXCHANGE,
                "bench.reference",
                body,
                pika.BasicProperties(message_id=message_id, delivery_mode=2),
            )
        connection.close()
        time.sleep(1.0)
        received = consumer.stop()
    latencies = [stamp - sent[message_id] for message_id, stamp in received if message_id in sent]
    return {"messages": count, "received": len(latencies)} | _percentiles(latencies)


def run(max_events_per_s: float, seconds: float, shape: WorkerShape) -> BenchResult:
    rate = max(1.0, max_events_per_s / 2)
    engine = measure_engine(rate, seconds, shape)
    broker = measure_broker(rate, max(1, int(rate * seconds)))
    ratio = engine["p99_ms"] / broker["p99_ms"] if broker["p99_ms"] else 0.0
    return BenchResult(
        name="latency",
        figure=(
            f"p50 {engine['p50_ms']:.0f} / p95 {engine['p95_ms']:.0f} /"
            f" p99 {engine['p99_ms']:.0f} ms at {rate:,.0f} events/s"
        ),
        reference=f"RabbitMQ alone p99 {broker['p99_ms']:.1f} ms",
        ratio=ratio,
        goal=f"p99 < {GOAL_P99_MS:.0f} ms",
        met=0 < engine["p99_ms"] < GOAL_P99_MS,
        metrics={"engine": engine, "broker": broker, "relay_idle_seconds": RELAY_IDLE_SECONDS}
        | shape.as_json(),
        notes=[
            f"at half the measured maximum ({max_events_per_s:,.0f} events/s);"
            f" relay with RELAY_IDLE_SECONDS={RELAY_IDLE_SECONDS}",
            *(
                [f"goal missed: the workers' logs are kept in {engine['worker_logs']}"]
                if "worker_logs" in engine
                else []
            ),
        ],
    )
