"""`python -m bench instructions` under the real valgrind: the replay of a few workload events
costs more instructions than that of an empty file, and a plausible number an event."""

from __future__ import annotations

import re

import pytest

from bench.cli import main


def test_the_command_counts_a_replayed_event_under_callgrind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["instructions", "--events", "40"]) == 0
    printed = capsys.readouterr().out
    found = re.search(
        r"^([\d,]+) instructions an event over 40 replayed events \(([\d,]+) with them, ([\d,]+)"
        r" with an empty file;",
        printed,
    )
    assert found is not None, printed
    per_event, with_events, without_events = (int(part.replace(",", "")) for part in found.groups())
    assert with_events > without_events > 0
    # About a million on this project's machine (docs/performance.md, "The interpreter"); the
    # bounds only catch a count of the wrong thing (the empty run's, or a crash's).
    assert 100_000 < per_event < 20_000_000
