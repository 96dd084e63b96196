"""One event at a time through the workers' unit of work, in this process, on PostgreSQL: what
an event costs the engine's client side (CPU) and how long it takes (wall), without RabbitMQ,
Dramatiq or other threads. A diagnostic beside `bench run`, not one of its goals.

    python -m bench.in_process --events 2000     # after 200 events of warm-up

Compare two trees by running it with `PYTHONPATH` at each, alternately (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass

import structlog

from bench.servers import pg_database
from policy.config import load_policies
from testbed import workload
from workers.database import make_engine, migrate
from workers.unit_of_work import EventProcessor

WARM_UP = 200


@dataclass(frozen=True, slots=True)
class InProcess:
    events: int
    wall_us: float
    cpu_us: float


def measure(events: int, warm_up: int = WARM_UP) -> InProcess:
    """Apply `warm_up` then `events` workload events, one transaction each; the last ones timed."""
    envelopes = [json.loads(json.dumps(envelope)) for envelope in workload.events(warm_up + events)]
    with pg_database() as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            apply = EventProcessor(engine, load_policies())
            for envelope in envelopes[:warm_up]:
                apply(envelope)
            wall, cpu = time.perf_counter(), time.process_time()
            for envelope in envelopes[warm_up:]:
                apply(envelope)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            engine.dispose()
    return InProcess(events, wall / events * 1e6, cpu / events * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.in_process", description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    # What a worker logs at INFO for every event is not the engine's work being measured.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = measure(args.events)
    print(
        f"{result.events} events: {result.wall_us:,.0f} us wall, {result.cpu_us:,.0f} us CPU"
        " an event"
    )


if __name__ == "__main__":
    main()
