"""The fault run at CI scale: about 1,000 events over 100 contracts through the deployed
processes (two `recourse worker`, a `recourse relay`, two `recourse scheduler`) on the real
PostgreSQL and RabbitMQ, while every fault strikes: workers SIGKILLed mid-transaction, every
broker connection closed, the RabbitMQ application restarted, the engine's database sessions
terminated, the relay killed between publish and mark and SIGKILLed, the leading scheduler
SIGKILLed; every event published twice, dependent pairs out of order, poison of every kind.

The oracle then holds the run to a replay of the same events in their causal order: audit
green, the same balances and the same effects event by event, every notification published
at least once and exactly once after dedup, every poison dead-lettered with its reason,
nothing left queued, unacked or unsent. `python -m tests.e2e.faults` runs it larger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.faults.injectors import ROUND
from tests.e2e.faults.poison import poison_messages
from tests.e2e.faults.report import summary, table
from tests.e2e.faults.run import RunConfig, run_faults

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres]


def test_faults_lose_nothing_and_apply_nothing_twice(
    pg_url: str, rabbit_url: str, tmp_path: Path
) -> None:
    result = run_faults(
        RunConfig(
            events=1_000,
            contracts=100,
            database_url=pg_url,
            broker_url=rabbit_url,
            scratch=tmp_path,
        )
    )
    report = f"{table(result)}\n\n{summary(result)}"

    assert result.ok, report
    assert sorted(item.fault for item in result.injections) == sorted(ROUND), report
    assert all(item.recovered_s is not None for item in result.injections), report
    assert result.verdict.lost == result.verdict.duplicated == set(), report
    assert result.driver.copies >= result.load.events, report
    assert result.driver.reordered >= 20, report
    assert result.driver.poison == len(poison_messages()), report
    assert result.verdict.notifications_received >= result.verdict.notifications_expected > 0
