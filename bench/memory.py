"""Worker memory: the resident size of one `recourse worker` process over many events.

One worker process (its threads as in the throughput run) consumes the workload while a
sampler reads its VmRSS from /proc twice a second, beside how many events are committed. The
reference is the resident size after warm-up (the first tenth of the events): the ratio is
the size at the end over it, and should stay under 1.10.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.deployment import WorkerShape, encode, handled, publish_all, running, wait_consumers
from bench.results import BenchResult
from bench.servers import pg_database, rabbit_vhost
from testbed import workload
from workers.database import make_engine

GOAL_GROWTH = 1.10
SAMPLE_S = 0.5
WARM_UP_SHARE = 0.1
FULL_EVENTS = 1_000_000
PUBLISH_CHUNK = 5_000
STALL_S = 300.0


def resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _publish(broker_url: str, events: int) -> None:
    # Encoded in chunks as it goes: a million encoded messages would not fit the point.
    chunk: list[tuple[str, bytes]] = []
    for envelope in workload.events(events, prefix="mem"):
        chunk.append(encode(envelope))
        if len(chunk) >= PUBLISH_CHUNK:
            publish_all(broker_url, chunk)
            chunk = []
    publish_all(broker_url, chunk)


def run(events: int, threads: int) -> BenchResult:
    shape = WorkerShape(1, threads)
    samples: list[dict[str, Any]] = []
    with (
        pg_database() as database_url,
        rabbit_vhost() as broker_url,
        tempfile.TemporaryDirectory(prefix="recourse-bench-memory-") as logs,
        running(database_url, broker_url, Path(logs), shape=shape) as processes,
    ):
        worker_pid = processes.processes["worker"].pid
        engine = make_engine(database_url)
        publisher = multiprocessing.get_context("spawn").Process(
            target=_publish, args=(broker_url, events)
        )
        try:
            # The worker declares the exchange and the intake queue as it starts.
            wait_consumers(broker_url, 1)
            started = time.monotonic()
            publisher.start()
            done = 0
            progressed = time.monotonic()
            while done < events:
                time.sleep(SAMPLE_S)
                before, done = done, handled(engine)
                if done > before:
                    progressed = time.monotonic()
                elif time.monotonic() - progressed > STALL_S:
                    # An event that can never commit (dead-lettered, say) would otherwise keep
                    # a soak of hours waiting for ever.
                    raise TimeoutError(f"no event committed for {STALL_S:.0f} s at {done:,}")
                samples.append(
                    {
                        "s": round(time.monotonic() - started, 2),
                        "events": done,
                        "rss_kib": resident_kib(worker_pid),
                    }
                )
                if publisher.exitcode not in (None, 0):
                    raise RuntimeError("the publisher failed")
        finally:
            publisher.join(timeout=60)
            engine.dispose()
    warm = next(sample for sample in samples if sample["events"] >= events * WARM_UP_SHARE)
    final = samples[-1]
    growth = final["rss_kib"] / warm["rss_kib"]
    notes = [f"one worker process x {threads} threads"]
    if events < FULL_EVENTS:
        notes.append(
            f"{events:,} events, not {FULL_EVENTS:,}: --memory-events {FULL_EVENTS} for the full"
            " soak"
        )
    return BenchResult(
        name="worker_memory",
        figure=f"{final['rss_kib'] / 1024:,.1f} MiB after {final['events']:,} events",
        reference=f"{warm['rss_kib'] / 1024:,.1f} MiB after warm-up ({warm['events']:,})",
        ratio=growth,
        goal=f"ratio < {GOAL_GROWTH:.2f}",
        met=growth < GOAL_GROWTH,
        metrics={
            "events": events,
            "threads": threads,
            "warm_rss_kib": warm["rss_kib"],
            "final_rss_kib": final["rss_kib"],
            "samples": samples,
        },
        notes=notes,
    )
