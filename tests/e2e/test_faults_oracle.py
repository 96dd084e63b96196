"""The oracle of the fault runs is not vacuous: an event whose effects are missing is named
lost, one whose effects are there without cause is named duplicated, and the balances then
differ. No server: both stores are SQLite replays."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import Engine

from policy.config import load_policies
from testbed.stories import Load, generate_load
from tests.e2e.faults.oracle import Effect, Expected, Oracle, Verdict, classify, expected_of
from workers.database import make_engine, migrate
from workers.replay import replay_lines

TRANSFER = ("t#1", "posted", "user:a", "user:b", 500, "refund")
OTHER = ("t#2", "posted", "platform:fees", "user:b", 20, "client_fee_reversal")


def effect(*transfers: tuple[str, str, str, str, int, str], told: tuple[str, ...] = ()) -> Effect:
    return Effect("applied", None, frozenset(transfers), frozenset(told))


@pytest.mark.parametrize(
    ("expected", "actual", "kind"),
    [
        (effect(TRANSFER, told=("n1",)), effect(TRANSFER, told=("n1",)), None),
        (effect(TRANSFER, OTHER), None, "lost"),
        (effect(TRANSFER, OTHER), effect(TRANSFER), "lost"),
        (effect(TRANSFER, told=("n1",)), effect(TRANSFER), "lost"),
        (None, effect(TRANSFER), "duplicated"),
        (effect(TRANSFER), effect(TRANSFER, OTHER), "duplicated"),
        (effect(TRANSFER), Effect("rejected", "frozen", frozenset(), frozenset()), "diverged"),
        (effect(TRANSFER), effect(OTHER), "diverged"),
    ],
)
def test_an_event_is_classified_by_how_its_effects_differ(
    expected: Effect | None, actual: Effect | None, kind: str | None
) -> None:
    assert classify(expected, actual) == kind


def without(load: Load, event_id: str) -> Load:
    stories = tuple(
        dataclasses.replace(
            story, events=tuple(event for event in story.events if event.event_id != event_id)
        )
        for story in load.stories
    )
    return dataclasses.replace(load, stories=stories)


def replayed(load: Load, folder: Path) -> Engine:
    engine = make_engine(f"sqlite:///{folder / 'actual.sqlite'}")
    migrate(engine)
    # A file of its own, as `recourse replay` makes: the read cache and bare events.
    replay_lines(engine, load.causal_lines(), load_policies(), own_database=True)
    return engine


@pytest.fixture(scope="module")
def load() -> Load:
    return generate_load(200, 20, seed=4)


@pytest.fixture(scope="module")
def expected(load: Load) -> Expected:
    return expected_of(load.causal_lines())


def a_withdrawal_held(load: Load, expected: Expected) -> str:
    """An event with money effects that nothing after it depends on."""
    return next(
        event.event_id
        for event in load.causal_events()
        if event.type == "withdrawal.requested" and expected.effects[event.event_id].transfers
    )


def test_an_event_that_never_took_effect_is_lost_and_the_balances_differ(
    load: Load, expected: Expected, tmp_path: Path
) -> None:
    victim = a_withdrawal_held(load, expected)
    engine = replayed(without(load, victim), tmp_path)
    verdict = Verdict()
    oracle = Oracle(load, expected, [])

    oracle.check_events(engine, verdict)
    oracle.check_books(engine, verdict)

    assert (verdict.lost, verdict.duplicated, verdict.diverged) == ({victim}, set(), set())
    assert verdict.audit_ok
    assert any("balance(s) differ" in problem for problem in verdict.problems)


def test_an_effect_without_its_cause_in_the_expectation_is_duplicated(
    load: Load, expected: Expected, tmp_path: Path
) -> None:
    victim = a_withdrawal_held(load, expected)
    engine = replayed(load, tmp_path)
    verdict = Verdict()

    expected = expected_of(without(load, victim).causal_lines())
    Oracle(load, expected, []).check_events(engine, verdict)

    assert (verdict.lost, verdict.duplicated) == (set(), {victim})


def test_the_same_store_as_the_replay_passes(
    load: Load, expected: Expected, tmp_path: Path
) -> None:
    engine = replayed(load, tmp_path)
    verdict = Verdict()
    oracle = Oracle(load, expected, [])

    oracle.check_events(engine, verdict)
    oracle.check_books(engine, verdict)

    assert verdict.ok, verdict.problems
    assert verdict.accounts > 0
