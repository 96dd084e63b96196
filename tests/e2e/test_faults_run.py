"""The fault run at CI scale through the deployed processes (two `recourse worker`, a
`recourse relay`, two `recourse scheduler`) on the real PostgreSQL and RabbitMQ: a generated
history published by four publishers at once (each key always on the same one, in order; a
story's key switch published once the events before it are applied), every event twice,
the load's ticks published as the scheduler publishes them, poison of every kind, while the
faults strike: workers SIGKILLed mid-transaction, every broker connection of the run closed,
the engine's database sessions terminated, the relay killed between publish and mark and
SIGKILLed, the leading scheduler SIGKILLed.

The oracle holds the run to a replay of the original events in the order the broker confirmed
them: the same balances, and event by event the same inbox result, transfers and
notifications; every notification published at least once and exactly once after dedup;
every poison a `dead_letters` row with its reason and nothing else there; nothing left in
`refunds.intake`, the event log, the parked keys or the outbox; `recourse verify` the same
books. The scale is what fits in about three minutes on the CI machine (docs/reliability.md);
`python -m tests.e2e.faults --events 10000 --contracts 500` runs the size of issue 20.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.faults.driver import PUBLISHERS
from tests.e2e.faults.injectors import round_of
from tests.e2e.faults.poison import poison_messages
from tests.e2e.faults.report import summary, table
from tests.e2e.faults.run import RunConfig, run_faults

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres]

EVENTS = 3_000
CONTRACTS = 300


def test_a_history_from_four_publishers_under_faults_books_what_its_replay_in_published_order_books(
    pg_url: str, rabbit_url: str, tmp_path: Path
) -> None:
    result = run_faults(
        RunConfig(
            events=EVENTS,
            contracts=CONTRACTS,
            database_url=pg_url,
            broker_url=rabbit_url,
            scratch=tmp_path,
        )
    )
    report = f"{table(result)}\n\n{summary(result)}"

    assert result.ok, report
    assert result.load.events >= EVENTS, report
    assert result.load.contracts == CONTRACTS, report
    assert sorted(item.fault for item in result.injections) == sorted(round_of()), report
    assert all(item.recovered_s is not None for item in result.injections), report
    verdict = result.verdict
    assert verdict.lost == verdict.duplicated == verdict.diverged == set(), report
    assert verdict.verify_same and verdict.verify_steps >= result.load.events, report
    driver = result.driver
    assert driver.originals == result.load.events, report
    assert driver.copies >= result.load.events, report
    assert len(driver.per_publisher) == PUBLISHERS and min(driver.per_publisher) > 0, report
    assert driver.key_switches > 0, report
    assert driver.poison == len(poison_messages()), report
    assert verdict.notifications_received >= verdict.notifications_expected > 0, report
