"""The sweeper: every few seconds, nudge whatever work waits without a nudge on its way.

Nudges travel after commits and can be lost in a crash between the two, or be dropped by a
drain that failed; the log, the parked keys and the owed deadlines are the truth, and this
reads them. It also fires ticks that became ready while nobody looked.
"""

from __future__ import annotations

import threading

import structlog

from workers.actors import Nudger
from workers.intake.drain import TICKS_PARTITION, Drainer

log = structlog.get_logger(__name__)


class Sweeper:
    def __init__(self, drainer: Drainer, nudger: Nudger, *, interval_s: float) -> None:
        self.drainer = drainer
        self.nudger = nudger
        self.interval_s = interval_s

    def sweep(self) -> set[int]:
        partitions = self.drainer.partitions_with_work()
        if self.drainer.tick_waiting():
            partitions.add(TICKS_PARTITION)
        if partitions:
            self.nudger.nudge(partitions)
        return partitions

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception as exc:  # the database is away: look again next time
                log.warning("sweeper.failed", error=repr(exc)[:300])
