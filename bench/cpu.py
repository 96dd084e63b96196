"""Who spent the CPU during a timed run: the engine's processes, PostgreSQL, RabbitMQ, the
benchmark's own children (publishers or reference loops), and the rest of the machine.

On a machine whose cores are all busy, events a second is CPU per event turned upside down;
this says whose CPU it was. Linux only (`/proc`): each process's own user and system time read
at the start and the stop, plus the time of the children this process waited for meanwhile
(`cutime`, `cstime`: the publishers, which end before the stop), less what those children had
spent before the start. The machine's busy time comes from `/proc/stat`, without steal time
(the hypervisor's, no process's here). PostgreSQL is every `postgres` process and RabbitMQ every
`beam.smp`, whoever their work was for: other sessions on a shared machine count with them.
The CPU of a process that ends during the run and is not this process's child (a PostgreSQL
backend of a closed connection, a worker that died) is not seen by process and falls into the
rest; `rest` is the machine's busy time less everything counted, so a negative rest would mean
something was counted twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class _Process:
    name: str
    parent: int
    seconds: float  # user + system


def _processes() -> dict[int, _Process]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text("ascii", errors="replace")
        except OSError:
            continue  # it exited meanwhile
        # The name is in parentheses and may hold spaces; the fields after it are numbers.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND
        found[int(entry.name)] = _Process(name, int(fields[1]), seconds)
    return found


def _waited_children_seconds() -> float:
    fields = Path("/proc/self/stat").read_text("ascii").rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICKS_PER_SECOND


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, all) CPU seconds of every core since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text("ascii").split("\n", 1)[0].split()[1:]]
    # user, nice, system, idle, iowait, irq, softirq, steal; guest time is inside user time.
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    busy = user + nice + system + irq + softirq
    return busy / TICKS_PER_SECOND, (busy + idle + iowait + steal) / TICKS_PER_SECOND


def _descendants(processes: dict[int, _Process], roots: Collection[int]) -> set[int]:
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, process in processes.items():
            if process.parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


@dataclass(frozen=True, slots=True)
class CpuSplit:
    """CPU seconds spent over a run, by whom; `per_unit` divides them by the work done."""

    seconds: float
    engine: float
    postgresql: float
    rabbitmq: float
    children: float
    rest: float
    idle_share: float

    def per_unit(self, units: int) -> dict[str, float]:
        """Microseconds of CPU a unit of work (an event, a transaction), by whom."""
        return {
            "engine_us": round(self.engine / units * 1e6),
            "postgresql_us": round(self.postgresql / units * 1e6),
            "rabbitmq_us": round(self.rabbitmq / units * 1e6),
            "benchmark_children_us": round(self.children / units * 1e6),
            "rest_of_machine_us": round(self.rest / units * 1e6),
            "total_us": round(
                (self.engine + self.postgresql + self.rabbitmq + self.children + self.rest)
                / units
                * 1e6
            ),
        }


class CpuMeter:
    """Started at the moment a run's clock starts, stopped when it stops."""

    def __init__(self) -> None:
        self._started = False
        self._processes: dict[int, _Process] = {}
        self._children = 0.0
        self._children_before: dict[int, float] = {}
        self._busy = (0.0, 0.0)
        self._at = 0.0

    def start(self) -> None:
        self._processes = _processes()
        self._children = _waited_children_seconds()
        me = os.getpid()
        # What the children already running spent before the clock (starting, encoding their
        # messages) is in the time the parent collects when they end: taken off below.
        self._children_before = {
            pid: process.seconds for pid, process in self._processes.items() if process.parent == me
        }
        self._busy = _machine_busy_seconds()
        self._at = time.monotonic()
        self._started = True

    def stop(self, engine_roots: Collection[int] = ()) -> CpuSplit:
        """The split since `start`; `engine_roots` are the engine's processes started by the
        benchmark (their children count as the engine too)."""
        if not self._started:
            raise RuntimeError("the meter was never started")
        after = _processes()
        busy, total = _machine_busy_seconds()
        spent = {
            pid: process.seconds - (self._processes[pid].seconds if pid in self._processes else 0.0)
            for pid, process in after.items()
        }
        engine_pids = _descendants(after, [pid for pid in engine_roots if pid in after])
        engine = sum(spent[pid] for pid in engine_pids)
        postgresql = sum(
            spent[pid]
            for pid, process in after.items()
            if process.name == "postgres" and pid not in engine_pids
        )
        rabbitmq = sum(spent[pid] for pid, process in after.items() if process.name == "beam.smp")
        me = os.getpid()
        ended = [pid for pid in self._children_before if pid not in after]
        children = (
            _waited_children_seconds()
            - self._children
            - sum(self._children_before[pid] for pid in ended)
            + sum(
                spent[pid]
                for pid, process in after.items()
                if process.parent == me and pid not in engine_pids
            )
        )
        machine = busy - self._busy[0]
        rest = machine - engine - postgresql - rabbitmq - children
        all_seconds = total - self._busy[1]
        return CpuSplit(
            seconds=round(time.monotonic() - self._at, 3),
            engine=engine,
            postgresql=postgresql,
            rabbitmq=rabbitmq,
            children=children,
            rest=rest,
            idle_share=round(1 - machine / all_seconds, 3) if all_seconds else 0.0,
        )
