"""The benchmarks' workload and result table: deterministic, valid, and readable."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections import Counter
from typing import Any

from bench.deployment import encode
from bench.results import BenchResult, document, table
from messages import parse_event
from messages.publisher import EventPublisher
from messages.transport import EVENTS_EXCHANGE
from testbed import workload


def test_the_workload_is_the_same_every_time_and_every_event_is_valid() -> None:
    first = list(workload.lines(600))
    assert first == list(workload.lines(600))
    events = [parse_event(line) for line in first]
    assert len({event.event_id for event in events}) == 600
    kinds = Counter(event.type for event in events)
    assert kinds["deadline.tick"] == 600 // workload.TICK_EVERY - 1
    for kind in ("milestone.funded", "milestone.released", "refund.requested", "dispute.opened"):
        assert kinds[kind] > 0
    times = [event.occurred_at for event in events]
    assert times == sorted(times)


def test_a_prefix_keeps_two_runs_apart() -> None:
    ours = {json.loads(line)["event_id"] for line in workload.lines(100, prefix="x")}
    theirs = {json.loads(line)["event_id"] for line in workload.lines(100, prefix="y")}
    assert not ours & theirs


def test_the_table_has_a_row_a_benchmark_and_the_document_keeps_every_figure() -> None:
    result = BenchResult(
        name="replay",
        figure="900 events/s",
        reference="sqlite3 loop 9,000 tx/s",
        ratio=0.1,
        goal=">= 5,000 events/s",
        met=False,
        metrics={"events": 300},
        notes=["a note"],
    )
    printed = table([result]).splitlines()
    assert printed[0].split() == ["benchmark", "figure", "reference", "ratio", "goal", "met"]
    assert printed[2].startswith("replay") and printed[2].rstrip().endswith("NO")
    assert printed[-1] == "replay: a note"
    doc = document([result], size="tiny", command="python -m bench run", servers={})
    assert doc["benchmarks"]["replay"]["metrics"] == {"events": 300}
    assert doc["machine"]["cpus"] >= 1
    # Which build of the interpreter ran: the same version's builds differ by a tenth.
    assert doc["machine"]["python_executable"] == os.path.realpath(sys.executable)
    assert doc["machine"]["python_build"].startswith(platform.python_build()[0])


class _Recorder:
    """A pika connection and channel that keep what is published to them."""

    def __init__(self) -> None:
        self.is_open = True
        self.published: list[tuple[str, str, bytes]] = []

    def channel(self) -> _Recorder:
        return self

    def confirm_delivery(self) -> None:
        pass

    def basic_publish(self, exchange: str, routing_key: str, body: bytes, **_: Any) -> None:
        self.published.append((exchange, routing_key, body))

    def close(self) -> None:
        self.is_open = False


def test_the_benchmarks_encode_each_event_as_the_publisher_sends_it() -> None:
    """The publishers encode before the clock starts and send with `publish_raw`: the routing
    key and body must be those `EventPublisher.publish` would send, byte for byte."""
    recorder = _Recorder()
    envelopes = list(workload.events(400))
    with EventPublisher(
        "amqp://guest:guest@localhost/v", connection_factory=lambda _: recorder
    ) as publisher:
        for envelope in envelopes:
            publisher.publish(envelope)
    assert [(key, body) for _, key, body in recorder.published] == [
        encode(envelope) for envelope in envelopes
    ]
    assert {exchange for exchange, _, _ in recorder.published} == {EVENTS_EXCHANGE}
    assert "deadline.tick" in {key for key, _ in map(encode, envelopes)}
