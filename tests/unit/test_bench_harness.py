"""The benchmark harness: a run whose events stop being committed fails fast and says where to
look, and one failed benchmark does not cost the run the others' figures."""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest

from bench import cli, deployment
from bench.cli import DEFAULT_SHAPE, SIZES, run_benchmarks
from bench.deployment import Stalled, wait_for_count
from bench.results import BenchResult, document, table


def test_waiting_ends_when_the_count_is_reached() -> None:
    counts = itertools.count(0, 40)

    finished = wait_for_count(lambda: next(counts), 100, timeout_s=5.0, stall_s=5.0)

    assert finished > 0


def test_a_count_that_stops_moving_is_a_stall_that_says_where_to_look(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deployment, "POLL_S", 0.01)
    counts = itertools.chain([0, 3, 7], itertools.repeat(7))

    with pytest.raises(Stalled) as stalled:
        wait_for_count(lambda: next(counts), 10, timeout_s=30.0, stall_s=0.2)

    message = str(stalled.value)
    assert message.startswith("7 of 10 events committed, and none for 0 s")
    assert "dead_letters" in message and "parked_keys" in message


def test_a_count_that_moves_too_slowly_times_out_without_stalling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deployment, "POLL_S", 0.01)
    counts = itertools.count()

    with pytest.raises(TimeoutError) as timed_out:
        wait_for_count(lambda: next(counts), 10**9, timeout_s=0.2, stall_s=30.0)

    assert not isinstance(timed_out.value, Stalled)
    assert "of 1000000000 events committed after 0 s" in str(timed_out.value)


def _result(name: str) -> BenchResult:
    return BenchResult(
        name=name,
        figure="470 ms",
        reference="371 ms",
        ratio=1.27,
        goal="< 1 s",
        met=True,
    )


def test_a_failed_benchmark_is_reported_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def stalls(events: int, runs: int) -> BenchResult:
        error = Stalled(f"19999 of {events} events committed, and none for 150 s")
        error.add_note("the workers' logs are kept in /tmp/somewhere")
        raise error

    monkeypatch.setattr(cli.replay, "run", stalls)
    monkeypatch.setattr(cli.ticks, "run", lambda stored, due: _result("deadline_tick"))
    said: list[str] = []

    outcome = run_benchmarks(
        ["replay", "deadline_tick"], SIZES["small"], DEFAULT_SHAPE, report=said.append
    )

    assert [result.name for result in outcome.results] == ["deadline_tick"]
    reason = outcome.failures["replay"]
    assert reason.startswith("bench.deployment.Stalled: 19999 of")
    assert "the workers' logs are kept in /tmp/somewhere" in reason
    assert said[:2] == ["running replay ...", f"  failed: {reason}"]
    assert said[2] == "running deadline_tick ..."


def test_the_table_and_the_document_name_each_failure() -> None:
    failures = {"throughput": "Stalled: 7 of 10 events committed"}

    printed = table([_result("deadline_tick")], failures).splitlines()
    doc = document(
        [_result("deadline_tick")], size="tiny", command="c", servers={}, failures=failures
    )

    assert printed[3].split() == ["throughput", "FAILED", "-", "-", "-", "NO"]
    assert printed[-1] == "throughput: failed: Stalled: 7 of 10 events committed"
    assert doc["failures"] == failures
    assert list(doc["benchmarks"]) == ["deadline_tick"]


def test_sigterm_leaves_through_the_finally_blocks_that_stop_the_engine() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    cleaned_up = False
    try:
        assert cli.exit_on_sigterm() == previous
        with pytest.raises(SystemExit) as left:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                # The handler runs between bytecodes: give it some to run between.
                for _ in range(1000):
                    time.sleep(0.001)
            finally:
                cleaned_up = True
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert left.value.code == 128 + signal.SIGTERM
    assert cleaned_up
