"""Feeding the workload to consumers and timing it: the publishers, and the two ways the
throughput benchmarks run (live, and draining a queued backlog)."""

from __future__ import annotations

import multiprocessing
import re
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from bench.cpu import CpuMeter
from bench.deployment import (
    READY_TIMEOUT_S,
    STALL_S,
    declare_engine_queues,
    encode,
    handled,
    publish_all,
    wait_consumers,
    wait_for_count,
)
from testbed import workload

PUBLISHERS = 2
TICK = "deadline.tick"


def _publisher_share(envelope: dict[str, Any], publishers: int) -> int:
    """Which publisher sends `envelope`: every event of a contract (its disputes and requests
    too, whose ids carry the contract's number) goes through the same one, so every ordering
    key stays on one publisher, in order; ticks through the first."""
    ids = [str(value) for key, value in envelope["data"].items() if key.endswith("_id")]
    numbers = [re.findall(r"\d+", value) for value in ids]
    found = [int(digits[-1]) for digits in numbers if digits]
    return found[0] % publishers if found else 0


def _workload(events: int, *, ticks: bool) -> list[dict[str, Any]]:
    return [e for e in workload.events(events) if ticks or e["type"] != TICK]


def _publish_share(
    broker_url: str, events: int, index: int, publishers: int, ready: Any, *, ticks: bool
) -> None:
    share = [
        encode(envelope)
        for envelope in _workload(events, ticks=ticks)
        if _publisher_share(envelope, publishers) == index
    ]
    ready.wait()
    publish_all(broker_url, share)


def publish_in_parallel(
    broker_url: str,
    events: int,
    publishers: int = PUBLISHERS,
    *,
    ticks: bool = True,
    on_start: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Publish the workload (without its ticks when `ticks` is false) from `publishers`
    processes; the seconds it took and the monotonic time the first publish could start (when
    `on_start` is called)."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(publishers + 1)
    children = [
        context.Process(
            target=_publish_share,
            args=(broker_url, events, index, publishers, ready),
            kwargs={"ticks": ticks},
        )
        for index in range(publishers)
    ]
    for child in children:
        child.start()
    try:
        # The clock starts once every publisher has its messages encoded.
        ready.wait(timeout=READY_TIMEOUT_S)
        if on_start is not None:
            on_start()
        started = time.monotonic()
        for child in children:
            child.join()
    finally:
        # A publisher that never reached the barrier (or a parent that gave up) leaves the
        # others waiting at it: release them, and stop whoever is still running.
        ready.abort()
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join()
    if any(child.exitcode for child in children):
        raise RuntimeError("a publisher failed")
    return time.monotonic() - started, started


def feed_and_time(
    engine: Engine,
    broker_url: str,
    events: int,
    *,
    consumers: int,
    start_consumers: Callable[[], list[int]],
    backlog: bool,
    committed: Callable[[Engine], int] = handled,
) -> dict[str, Any]:
    """Feed the workload to consumers that `start_consumers` starts (returning the pids whose
    process trees are the engine), and time it until every event is committed.

    Live (`backlog=False`): the consumers listen first, then the publishers send while they
    work, and the clock runs from the first publish. Backlog: the events are queued before the
    consumers start, as after an outage, and the clock runs from the moment every consumer
    listens (the events committed by then are not counted), so neither the publishers nor the
    start-up are in the figure. A backlog leaves out the ticks, as it did when ticks had a
    queue of their own (they were all taken first, against a book with nothing yet due), so
    that its figures compare with the runs before the ordered intake.

    `committed` counts what is done so far: the engine's event log by default.
    """
    meter = CpuMeter()
    publish_seconds = None
    if backlog:
        # The exchange and its queue, as a worker declares them: published to before any runs.
        declare_engine_queues(broker_url)
        publish_in_parallel(broker_url, events, ticks=False)
        expected = len(_workload(events, ticks=False))
        roots = start_consumers()
        wait_consumers(broker_url, consumers)
        meter.start()
        started = time.monotonic()
        already = committed(engine)
    else:
        expected = events
        roots = start_consumers()
        # The consumers declare the exchange and the intake queue as they start.
        wait_consumers(broker_url, consumers)
        publish_seconds, started = publish_in_parallel(broker_url, events, on_start=meter.start)
        already = 0
    finished = wait_for_count(
        lambda: committed(engine), expected, timeout_s=max(120.0, events / 10), stall_s=STALL_S
    )
    cpu = meter.stop(roots)
    counted = expected - already
    if counted <= 0:
        raise RuntimeError(f"all {expected} events were committed before the clock started")
    seconds = finished - started
    figures: dict[str, Any] = {
        "events": expected,
        "counted_events": counted,
        "seconds": round(seconds, 3),
        "events_per_s": round(counted / seconds, 1),
        "cpu_per_event": cpu.per_unit(counted),
        "idle_share": cpu.idle_share,
    }
    if publish_seconds is not None:
        figures |= {
            "publish_s": round(publish_seconds, 3),
            "publish_per_s": round(events / publish_seconds, 1),
        }
    return figures
