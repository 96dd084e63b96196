"""`python -m bench instructions`: reading callgrind's total, and the count an event."""

from __future__ import annotations

import pytest

from bench import instructions
from bench.instructions import CallgrindMissing, InstructionCount, collected

_STDERR = """==4242== Callgrind, a call-graph generating cache profiler
==4242== For interactive control, run 'callgrind_control -h'.
==4242==
==4242== Events    : Ir
==4242== Collected : 6409322901
==4242==
==4242== I   refs:      6,409,322,901
"""


def test_the_total_is_read_from_what_callgrind_prints_on_exit() -> None:
    assert collected(_STDERR) == 6_409_322_901


def test_output_without_exactly_one_total_is_refused() -> None:
    with pytest.raises(ValueError, match="0 totals"):
        collected("==1== Callgrind, a call-graph generating cache profiler\n")
    with pytest.raises(ValueError, match="2 totals"):
        collected(_STDERR + _STDERR)


def test_an_event_costs_what_the_replay_adds_to_an_empty_one() -> None:
    counted = InstructionCount(
        events=3_000, with_events=6_409_000_000, without_events=3_268_000_000
    )
    assert counted.per_event == pytest.approx(1_047_000)


def test_no_valgrind_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions.shutil, "which", lambda _name: None)
    with pytest.raises(CallgrindMissing, match="valgrind"):
        instructions.count(10)


def test_no_events_is_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        instructions.count(0)
