"""The story generator of the fault runs: deterministic, causally valid, covering every event
type, and honest about which events may be delivered before the one they need. No server:
the causal order is replayed on SQLite."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import Engine

from messages import EVENT_MODELS, parse_event
from policy.apply import apply_event
from policy.config import load_policies
from policy.errors import UnknownSubject
from testbed.stories import BASE, Load, generate_load
from workers.database import make_engine, migrate
from workers.replay import replay_lines


@pytest.fixture(scope="module")
def load() -> Load:
    return generate_load(600, 60, seed=3)


@pytest.fixture(scope="module")
def replay_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder: Path = tmp_path_factory.mktemp("generator")
    engine = make_engine(f"sqlite:///{folder / 'replay.sqlite'}")
    migrate(engine)
    return engine


def test_the_same_arguments_give_the_same_load_to_the_byte() -> None:
    assert (
        generate_load(300, 30, seed=5).causal_lines()
        == generate_load(300, 30, seed=5).causal_lines()
    )
    assert (
        generate_load(300, 30, seed=5).causal_lines()
        != generate_load(300, 30, seed=6).causal_lines()
    )


@pytest.mark.parametrize(("events", "contracts"), [(1000, 100), (300, 10), (10_000, 1000)])
def test_a_load_has_the_contracts_asked_and_about_the_events(events: int, contracts: int) -> None:
    load = generate_load(events, contracts)
    assert load.contracts == contracts
    assert events <= load.events <= events * 1.25


def test_every_event_type_both_presets_both_kinds_and_jurisdictions_appear(load: Load) -> None:
    envelopes = [json.loads(line) for line in load.causal_lines()]
    assert {envelope["type"] for envelope in envelopes} == set(EVENT_MODELS)
    opened = [e["data"] for e in envelopes if e["type"] == "contract.opened"]
    assert {data["policy"] for data in opened} == {"spectrum", "cadcrowd"}
    assert {data["kind"] for data in opened} == {"fixed", "hourly"}
    assert any(data.get("client_jurisdiction") == "DE" for data in opened)


def test_every_line_is_a_valid_event_dated_after_the_wall_clock(load: Load) -> None:
    for line in load.causal_lines():
        event = parse_event(line)
        # The schedulers' own ticks (wall-clock time) must never fire a story's deadline.
        assert event.occurred_at >= BASE


def test_stories_keep_time_order_and_share_no_subject(load: Load) -> None:
    owners: dict[str, str] = {}
    for story in load.stories:
        times = [event.occurred_at for event in story.events]
        assert times == sorted(times) and len(set(times)) == len(times)
        for event in story.events:
            for key, value in event.envelope["data"].items():
                if key.endswith("_id") and isinstance(value, str):
                    assert owners.setdefault(value, story.story_id) == story.story_id, value


def test_each_phase_holds_every_event_up_to_its_tick_in_story_order(load: Load) -> None:
    seen = 0
    previous_tick = None
    for phase in load.phases():
        for part in phase.slices:
            assert all(event.occurred_at <= phase.tick.occurred_at for event in part)
            if previous_tick is not None:
                assert all(event.occurred_at > previous_tick for event in part)
            seen += len(part)
        previous_tick = phase.tick.occurred_at
    assert seen == load.story_events


def test_the_causal_replay_meets_no_unknown_subject_and_many_outcomes(
    load: Load, replay_engine: Engine
) -> None:
    """The oracle's expectation must be a story where every event finds its subject; the
    rules still refuse many things on the way (windows, frozen escrow, balances...)."""
    report = replay_lines(replay_engine, load.causal_lines(), load_policies())
    reasons = Counter(item["reason"] for item in report.rejections)
    assert "unknown_subject" not in reasons
    assert report.dead_letters == []
    assert {"window_expired", "invalid_state", "insufficient_balance"} <= set(reasons)
    kinds = Counter(item["type"] for item in report.notifications)
    assert {
        "refund.completed",
        "dispute.opened",
        "dispute.overdue",
        "milestone.finalized",
        "escrow.frozen",
        "chargeback.resolved",
        "review_window.closed",
        "withdrawal.scheduled",
        "points.clawed_back",
    } <= set(kinds)
    assert "dispute.resolved" in kinds


def test_an_event_sent_before_the_one_it_needs_waits_for_it(tmp_path: Path) -> None:
    """Each `needs` pair is one the run may deliver out of order: alone, the dependent event
    names a subject not seen yet, which the workers retry rather than refuse."""
    load = generate_load(400, 40, seed=11)
    policies = load_policies()
    engine = make_engine(f"sqlite:///{tmp_path / 'needs.sqlite'}")
    migrate(engine)
    checked: Counter[tuple[str, str]] = Counter()
    with engine.connect() as conn, conn.begin():
        for story in load.stories:
            dependents = defaultdict(list)
            for event in story.events:
                if event.needs is not None:
                    dependents[event.needs].append(event)
            for event in story.events:
                for dependent in dependents[event.event_id]:
                    savepoint = conn.begin_nested()
                    with pytest.raises(UnknownSubject):
                        apply_event(conn, parse_event(dependent.envelope), policies)
                    savepoint.rollback()
                    checked[(event.type, dependent.type)] += 1
                with conn.begin_nested():
                    apply_event(
                        conn, parse_event(event.envelope), policies, on_unknown_subject="reject"
                    )
    assert len(checked) >= 12
    assert sum(checked.values()) >= 200
