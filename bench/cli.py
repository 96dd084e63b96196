"""`python -m bench run`: every benchmark on this machine's PostgreSQL and RabbitMQ, a table,
and a JSON file and its plot under bench/results/ (git-ignored).

    python -m bench run                      # the small size: a few minutes
    python -m bench run --size full          # the sizes the goals name (see docs/performance.md)
    python -m bench run --only replay,latency
    python -m bench run --only console_queue  # the console's queue with 100,000 disputes
    python -m bench run --deadlines-10m      # adds a tick among 10,000,000 deadlines (~100 s)
    python -m bench run --memory-events 1000000
    python -m bench plot bench/results/<stamp>.json --out docs/performance.png
    python -m bench instructions --events 3000   # a replayed event's instructions (callgrind)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import (
    console_queue,
    instructions,
    latency,
    ledger_growth,
    memory,
    replay,
    throughput,
    ticks,
)
from bench.deployment import WorkerShape
from bench.results import RESULTS_DIR, BenchResult, document, table, write
from bench.servers import server_versions

BENCHMARKS = (
    "replay",
    "throughput",
    "latency",
    "deadline_tick",
    "ledger_growth",
    "worker_memory",
    "console_queue",
)
# Two processes side-step the GIL on two cores; four threads each keep PostgreSQL busy while
# one thread computes (see docs/performance.md for the shapes tried).
DEFAULT_SHAPE = WorkerShape(processes=2, threads=4)


@dataclass(frozen=True, slots=True)
class Sizes:
    replay_events: int
    replay_runs: int
    throughput_events: int
    latency_seconds: float
    deadline_stored: tuple[int, ...]
    deadline_due: int
    ledger_transfers: tuple[int, ...]
    memory_events: int
    # Without a throughput run, latency paces at half of this.
    fallback_max_events_per_s: float = 200.0
    console_disputes: int = 100_000  # issue 22's size


SIZES = {
    "tiny": Sizes(
        replay_events=300,
        replay_runs=1,
        throughput_events=200,
        latency_seconds=3.0,
        deadline_stored=(20_000,),
        deadline_due=100,
        ledger_transfers=(1_000, 10_000),
        memory_events=300,
        fallback_max_events_per_s=60.0,
        console_disputes=2_000,
    ),
    "small": Sizes(
        replay_events=20_000,
        replay_runs=3,
        throughput_events=3_000,
        latency_seconds=20.0,
        deadline_stored=(1_000_000,),
        deadline_due=1_000,
        ledger_transfers=(10_000, 100_000, 1_000_000),
        memory_events=20_000,
    ),
    "full": Sizes(
        replay_events=100_000,
        replay_runs=3,
        throughput_events=20_000,
        latency_seconds=60.0,
        deadline_stored=(1_000_000,),
        deadline_due=1_000,
        ledger_transfers=(10_000, 100_000, 1_000_000),
        memory_events=100_000,
    ),
}


@dataclass
class Outcome:
    """What a run measured, and why each benchmark that failed did."""

    results: list[BenchResult] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def run_benchmarks(
    names: Sequence[str],
    sizes: Sizes,
    shape: WorkerShape,
    *,
    report: Callable[[str], None] = print,
) -> Outcome:
    """Run the benchmarks called `names`, in the order of BENCHMARKS. One that fails (a run
    that stalls, a server that goes away) is reported with its reason and the rest still run:
    a full-size run takes half an hour, and one failure should not cost the other figures."""
    outcome = Outcome()
    max_rate = sizes.fallback_max_events_per_s
    for name in BENCHMARKS:
        if name not in names:
            continue
        report(f"running {name} ...")
        try:
            result = _run_one(name, sizes, shape, max_rate)
        except Exception as exc:
            # With its notes, such as where the workers' logs were kept.
            reason = "".join(traceback.format_exception_only(exc)).strip()
            report(f"  failed: {reason}")
            outcome.failures[name] = reason
            continue
        if name == "throughput":
            max_rate = result.metrics["events_per_s"]
        report(f"  {result.figure} (ratio {result.ratio:.2f}, goal {result.goal})")
        outcome.results.append(result)
    return outcome


def _run_one(name: str, sizes: Sizes, shape: WorkerShape, max_rate: float) -> BenchResult:
    if name == "replay":
        return replay.run(sizes.replay_events, sizes.replay_runs)
    if name == "throughput":
        return throughput.run(sizes.throughput_events, shape)
    if name == "latency":
        return latency.run(max_rate, sizes.latency_seconds, shape)
    if name == "deadline_tick":
        return ticks.run(list(sizes.deadline_stored), sizes.deadline_due)
    if name == "ledger_growth":
        return ledger_growth.run(sizes.ledger_transfers)
    if name == "console_queue":
        return console_queue.run(sizes.console_disputes)
    return memory.run(sizes.memory_events, shape.threads)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the benchmarks, print and save the results")
    run.add_argument("--size", choices=sorted(SIZES), default="small")
    run.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated: {','.join(BENCHMARKS)}"
    )
    run.add_argument("--processes", type=int, default=DEFAULT_SHAPE.processes)
    run.add_argument("--threads", type=int, default=DEFAULT_SHAPE.threads)
    run.add_argument("--deadlines-10m", action="store_true", help="add 10,000,000 deadlines")
    run.add_argument("--memory-events", type=int, help="events for the worker memory soak")
    run.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    run.add_argument(
        "--plot", type=Path, help="where to draw the PNG (default: beside the results file)"
    )
    run.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib)")
    plot = commands.add_parser("plot", help="draw the PNG of a saved results file")
    plot.add_argument("results", type=Path)
    plot.add_argument(
        "--out", type=Path, help="where to draw it (default: the results file's name, .png)"
    )
    count = commands.add_parser(
        "instructions", help="count a replayed event's instructions under callgrind"
    )
    count.add_argument("--events", type=int, default=3_000)
    return parser


def _print_instructions(events: int) -> int:
    try:
        counted = instructions.count(events)
    except (instructions.CallgrindMissing, ValueError) as refused:
        print(refused, file=sys.stderr)
        return 2
    print(
        f"{counted.per_event:,.0f} instructions an event over {events:,} replayed events"
        f" ({counted.with_events:,} with them, {counted.without_events:,} with an empty file;"
        f" {os.path.realpath(sys.executable)})"
    )
    return 0


def exit_on_sigterm() -> Any:
    """Make SIGTERM (`kill`, `timeout`, a CI job cancelled) leave through the `finally` blocks
    like Ctrl-C does: they stop the engine's processes and drop the run's database and vhost.
    Python's default for SIGTERM ends the process at once, and left the workers running and
    holding their database. Returns the handler it replaced."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, leave)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "plot":
        from bench.plot import draw

        out = args.out or args.results.with_suffix(".png")
        print(draw(json.loads(args.results.read_text(encoding="utf-8")), out))
        return 0
    if args.command == "instructions":
        return _print_instructions(args.events)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmarks: {', '.join(unknown)}", file=sys.stderr)
        return 2
    sizes = SIZES[args.size]
    if args.deadlines_10m:
        sizes = replace(sizes, deadline_stored=(*sizes.deadline_stored, 10_000_000))
    if args.memory_events:
        sizes = replace(sizes, memory_events=args.memory_events)
    shape = WorkerShape(args.processes, args.threads)
    previous = exit_on_sigterm()
    try:
        outcome = run_benchmarks(names, sizes, shape)
    finally:
        # `main` also runs inside other programs (the tests): leave their handler as it was.
        signal.signal(signal.SIGTERM, previous)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    doc = document(
        outcome.results,
        size=args.size,
        command=command,
        servers=server_versions(),
        failures=outcome.failures,
    )
    path = write(doc, args.results_dir)
    print()
    print(table(outcome.results, outcome.failures))
    print(f"\nresults: {path}")
    if not args.no_plot and outcome.results:
        from bench.plot import draw

        print(f"plot: {draw(doc, args.plot or path.with_suffix('.png'))}")
    return 1 if outcome.failures else 0
