"""Deadlines: one `deadline.tick` that fires 1,000 due deadlines among many stored.

A thin layer over `bench/deadlines.py` (fill, plan, tick): each size runs on a throwaway
database. The reference is the same tick among a tenth as many stored rows, so the ratio says
how the tick's cost grows with the table (1.0 is flat).
"""

from __future__ import annotations

from bench import deadlines
from bench.results import BenchResult
from bench.servers import pg_database
from workers.database import make_engine, migrate

GOAL_TICK_S = 1.0
GOAL_GROWTH = 2.0


def tick_among(stored: int, due: int) -> deadlines.BenchResult:
    with pg_database() as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            return deadlines.run(engine, stored=stored, due=due)
        finally:
            engine.dispose()


def run(sizes: list[int], due: int) -> BenchResult:
    """Time a tick among each of `sizes` stored (ascending). The reference is the size before
    the largest, or a tenth of the only one."""
    measured = [tick_among(stored, due) for stored in sizes]
    reference = measured[-2] if len(measured) > 1 else tick_among(max(due, sizes[0] // 10), due)
    largest, first = measured[-1], measured[0]
    growth = largest.tick_seconds / reference.tick_seconds
    everything = [*measured, reference] if len(measured) == 1 else measured
    met = (
        first.tick_seconds < GOAL_TICK_S
        and all(result.fired == due for result in everything)
        and growth <= GOAL_GROWTH
    )
    notes = []
    if sizes[-1] < 10_000_000:
        notes.append(f"up to {sizes[-1]:,} stored; --deadlines-10m adds 10,000,000 (~100 s fill)")
    return BenchResult(
        name="deadline_tick",
        figure=", ".join(
            f"{result.tick_seconds * 1000:,.0f} ms among {result.stored:,}" for result in measured
        ),
        reference=f"{reference.tick_seconds * 1000:,.0f} ms among {reference.stored:,}",
        ratio=growth,
        goal=f"< {GOAL_TICK_S:.0f} s among {sizes[0]:,}; ratio <= {GOAL_GROWTH:.0f}",
        met=met,
        metrics={
            "due": due,
            "ticks": [
                {
                    "stored": result.stored,
                    "tick_s": round(result.tick_seconds, 4),
                    "fill_s": round(result.fill_seconds, 2),
                    "fired": result.fired,
                }
                for result in sorted(everything, key=lambda result: result.stored)
            ],
        },
        notes=notes,
    )
