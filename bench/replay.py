"""Replay (embedded, SQLite): events a second over a generated JSON Lines file.

The file is written first (deterministic, `testbed.workload`), then timed: reading its lines and
`workers.replay.replay_lines` on a fresh, migrated SQLite file opened as `recourse replay` opens
its own (`make_throwaway_engine`: not synced, a larger page cache). The reference is
`bench.reference.sqlite_reference` on another such file: the same number of transactions of
the least shape an event has, with sqlite3 and no policy.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.reference import sqlite_reference
from bench.results import BenchResult
from policy.config import load_policies
from testbed import workload
from workers.database import make_throwaway_engine, migrate
from workers.replay import COMMIT_EVERY, ReplayReport, replay_lines

GOAL_EVENTS_PER_S = 5_000


def run(events: int, runs: int = 1) -> BenchResult:
    """Replay `events` events `runs` times, each into a fresh file, with a reference run
    after each; the figures are the medians. One run of the same tree wanders by 5-10 % on
    this machine (docs/performance.md), which a single run's "met" would follow."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs}")
    rates: list[float] = []
    reference_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="recourse-bench-replay-") as scratch:
        folder = Path(scratch)
        source = workload.write_file(folder / "events.jsonl", events)
        for number in range(runs):
            report, seconds = replay_file(source, folder / f"replay-{number}.sqlite")
            rates.append(events / seconds)

            reference_engine = make_throwaway_engine(folder / f"reference-{number}.sqlite")
            migrate(reference_engine)
            reference = sqlite_reference(
                reference_engine, transactions=events, commit_every=COMMIT_EVERY
            )
            reference_rates.append(reference.per_second)
            reference_engine.dispose()
            _remove_database(folder / f"reference-{number}.sqlite")
    per_second = statistics.median(rates)
    reference_per_second = statistics.median(reference_rates)
    notes = []
    if runs > 1:
        notes.append(
            f"median of {runs} runs, each into a fresh file: "
            + ", ".join(f"{rate:,.0f}" for rate in rates)
            + " events/s; reference "
            + ", ".join(f"{rate:,.0f}" for rate in reference_rates)
            + " tx/s"
        )
    return BenchResult(
        name="replay",
        figure=f"{per_second:,.0f} events/s",
        reference=f"sqlite3 loop {reference_per_second:,.0f} tx/s",
        ratio=per_second / reference_per_second,
        goal=f">= {GOAL_EVENTS_PER_S:,} events/s",
        met=per_second >= GOAL_EVENTS_PER_S,
        metrics={
            "events": events,
            "runs": runs,
            "events_per_s": round(per_second, 1),
            "events_per_s_runs": [round(rate, 1) for rate in rates],
            "reference_tx_per_s": round(reference_per_second, 1),
            "reference_tx_per_s_runs": [round(rate, 1) for rate in reference_rates],
            "rejections": len(report.rejections),
            "dead_letters": len(report.dead_letters),
            "notifications": len(report.notifications),
        },
        notes=notes,
    )


def replay_file(source: Path, database: Path) -> tuple[ReplayReport, float]:
    """Replay the JSON Lines file `source` into a fresh SQLite file `database`, opened as
    `recourse replay` opens its own, then remove that file. Returns the report and the seconds
    it took to read the lines and replay them (making the file is not counted)."""
    engine = make_throwaway_engine(database)
    try:
        migrate(engine)
        started = time.perf_counter()
        with source.open(encoding="utf-8") as handle:
            report = replay_lines(engine, handle.readlines(), load_policies(), own_database=True)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
        _remove_database(database)
    return report, seconds


def _remove_database(path: Path) -> None:
    # Each run's file goes before the next run starts, so that no run shares the machine
    # with the writing back of an earlier one's pages. In a full-size run that kept them, each
    # of three replays and references was slower than the one before (5,157, 4,489, 4,100
    # events/s; 16,294, 14,556, 14,109 tx/s); the four runs since removing them showed no such
    # trend (docs/performance.md, "Comparing two trees"). Suggestive, not proven.
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        file.unlink(missing_ok=True)
