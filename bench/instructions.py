"""Instructions a replayed event costs, counted by callgrind: a figure that does not wander.

Wall time and CPU time on this project's shared two-core machine wander by 5-10 % between two
runs of the same tree, more than most single changes buy (docs/performance.md, "How to compare
two trees"). valgrind's callgrind counts the instructions a program executes instead: the same
tree, file and interpreter give the same count to a few hundredths of a percent, whatever else
the machine is doing. So two trees, or two interpreters, can be compared in one pair of runs.

    python -m bench instructions --events 3000

runs `workers.replay.replay_lines` over the workload's first N events on a fresh file, as the
replay benchmark does, under callgrind; and once more over an empty file, to take away what
starting Python, importing the engine and migrating the file cost. Both run at once (one a
core). Under callgrind Python runs about 50 times slower: 3,000 events take about a minute.
An instruction is not a second (cache misses and branch layout are not counted), so this
settles which of two trees does less work, not how fast either runs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed import workload

_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.MULTILINE)


class CallgrindMissing(RuntimeError):
    """valgrind is not on this machine, so there is nothing to count with."""


@dataclass(frozen=True, slots=True)
class InstructionCount:
    events: int
    with_events: int  # the whole process, replaying the events
    without_events: int  # the whole process, replaying an empty file

    @property
    def per_event(self) -> float:
        return (self.with_events - self.without_events) / self.events


def collected(valgrind_stderr: str) -> int:
    """The total callgrind prints on exit ("==<pid>== Collected : <n>")."""
    found = _COLLECTED.findall(valgrind_stderr)
    if len(found) != 1:
        raise ValueError(f"callgrind printed {len(found)} totals, not one:\n{valgrind_stderr}")
    return int(found[0])


def count(events: int, *, valgrind: str | None = None) -> InstructionCount:
    """Count the instructions of a replay of `events` workload events, and of none."""
    if events < 1:
        raise ValueError(f"events must be at least 1, not {events}")
    valgrind = valgrind or shutil.which("valgrind")
    if valgrind is None:
        raise CallgrindMissing("valgrind is not on the PATH (Debian: apt install valgrind)")
    with tempfile.TemporaryDirectory(prefix="recourse-bench-instructions-") as scratch:
        folder = Path(scratch)
        full = workload.write_file(folder / "events.jsonl", events)
        empty = folder / "empty.jsonl"
        empty.write_text("", encoding="utf-8")
        runs = [
            subprocess.Popen(
                [
                    valgrind,
                    "--tool=callgrind",
                    f"--callgrind-out-file={folder / f'callgrind.{index}.out'}",
                    sys.executable,
                    "-m",
                    "bench.instructions",
                    "replay",
                    str(path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for index, path in enumerate((full, empty))
        ]
        # Both finish before either is judged, so a failed one leaves no other running.
        outputs = [run.communicate()[1] for run in runs]
        for run, stderr in zip(runs, outputs, strict=True):
            if run.returncode != 0:
                raise RuntimeError(f"the replay under callgrind failed:\n{stderr}")
        totals = [collected(stderr) for stderr in outputs]
    return InstructionCount(events=events, with_events=totals[0], without_events=totals[1])


def _replay_under_callgrind(path: Path) -> None:
    """What runs under callgrind: the replay benchmark's own steps (`bench.replay.replay_file`)."""
    from bench.replay import replay_file

    with tempfile.TemporaryDirectory(prefix="recourse-bench-instructions-db-") as scratch:
        replay_file(path, Path(scratch) / "replay.sqlite")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("replay", help="(what runs under callgrind)").add_argument(
        "file", type=Path
    )
    args = parser.parse_args(argv)
    _replay_under_callgrind(args.file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
