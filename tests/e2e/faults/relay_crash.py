"""A relay process that dies between publishing and marking: the outbox fault.

It is the engine's own `OutboxRelay` with the engine's own RabbitMQ sink, built from the same
environment as `recourse relay`; only its sink counts. After it has published `--after`
notifications (each confirmed by the broker) it appends their ids to `--record` and ends the
process with `os._exit`, so the batch transaction that claimed them never marks them sent and
no cleanup runs: what a power cut or an OOM kill does between the publish and the commit.

    python -m tests.e2e.faults.relay_crash --after 3 --record published.txt
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from workers.relay import NotificationSink, OutboxNotification
from workers.runtime import from_environment

CRASH_EXIT_CODE = 137
"""What a shell reports for a process ended by SIGKILL."""


class DieAfterPublishing:
    def __init__(self, sink: NotificationSink, after: int, record: Path) -> None:
        self.sink = sink
        self.after = after
        self.record = record
        self.published: list[str] = []

    def publish(self, notification: OutboxNotification) -> None:
        self.sink.publish(notification)
        self.published.append(notification.notification_id)
        if len(self.published) >= self.after:
            with self.record.open("w", encoding="utf-8") as handle:
                handle.write("\n".join(self.published) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os._exit(CRASH_EXIT_CODE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after", type=int, required=True, help="Publishes before the crash.")
    parser.add_argument("--record", type=Path, required=True, help="File for the ids sent.")
    args = parser.parse_args()
    runtime, stop = from_environment()
    relay = runtime.relay(DieAfterPublishing(runtime.notification_sink(), args.after, args.record))
    try:
        relay.run(stop, idle_seconds=0.05)
    finally:
        runtime.close()


if __name__ == "__main__":
    main()
