"""`bench.cpu`: CPU time is put down to the process tree that spent it (Linux /proc, as the
benchmarks themselves need)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from typing import Any

import pytest

from bench.cpu import CpuMeter


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def burn_twice(ready: Any, go: Any) -> None:
    burn(0.3)  # before the clock, as a publisher encodes its messages
    ready.set()
    go.wait()
    burn(0.3)


def test_a_waited_child_counts_only_what_it_spent_after_the_start() -> None:
    context = multiprocessing.get_context("spawn")
    ready, go = context.Event(), context.Event()
    child = context.Process(target=burn_twice, args=(ready, go))
    child.start()
    assert ready.wait(30)
    meter = CpuMeter()
    meter.start()
    go.set()
    child.join()
    split = meter.stop()

    assert 0.2 <= split.children <= 0.45, split
    assert split.engine == 0.0
    per_event = split.per_unit(10)
    assert per_event["benchmark_children_us"] == round(split.children / 10 * 1e6)
    # The machine's busy time and the processes' own times come from different counters, so
    # neither bounds the other exactly; the total is the parts' sum, the rest included.
    parts = sum(value for name, value in per_event.items() if name != "total_us")
    assert abs(per_event["total_us"] - parts) <= len(per_event)


def test_an_engine_process_alive_at_the_stop_is_counted_as_the_engine() -> None:
    code = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
    engine = subprocess.Popen([sys.executable, "-c", code + "time.sleep(30)"])
    try:
        meter = CpuMeter()
        meter.start()
        time.sleep(1.5)
        split = meter.stop([engine.pid])
    finally:
        engine.kill()
        engine.wait()

    assert 0.2 <= split.engine <= 0.6, split
    assert split.children < 0.1


def test_stop_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="never started"):
        CpuMeter().stop()
