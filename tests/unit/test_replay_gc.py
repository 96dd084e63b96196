"""The replay keeps what survives a batch's commit out of the garbage collector's sight, and
gives it back when it ends (`workers.replay._long_lived_frozen`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from policy.config import load_policies
from testbed import workload
from workers import replay
from workers.replay import replay_lines


def test_what_survives_each_commit_is_frozen_until_the_replay_ends(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gc.get_freeze_count() == 0
    frozen_at: list[int] = []
    real_freeze = gc.freeze

    def freeze() -> None:
        real_freeze()
        frozen_at.append(gc.get_freeze_count())

    monkeypatch.setattr(gc, "freeze", freeze)
    monkeypatch.setattr(replay, "COMMIT_EVERY", 10)
    report = replay_lines(sqlite_engine, list(workload.lines(35)), load_policies())
    assert len(frozen_at) == 3  # after the commits at 10, 20 and 30 events
    assert all(count > 0 for count in frozen_at)
    assert gc.get_freeze_count() == 0
    assert report.events_read == 35


def test_a_replay_that_fails_midway_unfreezes_too(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "COMMIT_EVERY", 10)

    def lines_then_a_failure() -> Iterator[str]:
        yield from workload.lines(25)
        raise OSError("the file went away")

    with pytest.raises(OSError, match="went away"):
        replay_lines(sqlite_engine, lines_then_a_failure(), load_policies())
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_of_its_own_is_left_alone(sqlite_engine: Engine) -> None:
    """What the process froze stays frozen: out of every generation the collector walks. (The
    freeze count itself may drop: a frozen object whose last reference goes is freed.)"""
    keep = [[number] for number in range(3)]
    gc.freeze()
    try:
        replay_lines(sqlite_engine, list(workload.lines(30)), load_policies())
        walked = {id(item) for item in gc.get_objects()}
        assert gc.get_freeze_count() > 0
        assert not [item for item in keep if id(item) in walked]
    finally:
        gc.unfreeze()
    walked = {id(item) for item in gc.get_objects()}
    assert all(id(item) in walked for item in keep)
