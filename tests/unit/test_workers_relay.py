"""The outbox relay on SQLite with the in-process sink: order, marks, and the crash between
publish and mark."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select

from policy.tables import outbox
from scheduler.clock import FixedClock
from workers.metrics import EngineMetrics
from workers.relay import MemorySink, OutboxNotification, OutboxRelay

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def write_outbox(engine: Engine, count: int, *, type_: str = "dispute.opened") -> list[str]:
    ids = []
    with engine.begin() as conn:
        for number in range(count):
            notification_id = f"evt-{number}:{type_}"
            body = {"notification_id": notification_id, "type": type_, "data": {"n": number}}
            conn.execute(
                insert(outbox).values(
                    notification_id=notification_id,
                    type=type_,
                    occurred_at=AT,
                    body=json.dumps(body),
                    event_id=f"evt-{number}",
                    contract_id="c1",
                )
            )
            ids.append(notification_id)
    return ids


def unsent(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(outbox.c.notification_id)
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.seq)
            ).scalars()
        )


class CrashAfterPublish:
    """Publishes, then dies before the relay can mark anything sent."""

    def __init__(self, sink: MemorySink) -> None:
        self.sink = sink

    def publish(self, notification: OutboxNotification) -> None:
        self.sink.publish(notification)
        raise SystemExit("relay process killed between publish and mark")


def test_the_relay_publishes_every_row_once_in_outbox_order(sqlite_engine: Engine) -> None:
    ids = write_outbox(sqlite_engine, 7)
    sink = MemorySink()
    relay = OutboxRelay(sqlite_engine, sink, batch_size=3, clock=FixedClock(NOW))

    assert [relay.relay_batch(), relay.relay_batch(), relay.relay_batch()] == [3, 3, 1]
    assert relay.drain() == 0

    assert [notification.notification_id for notification in sink.sent] == ids
    assert unsent(sqlite_engine) == []
    with sqlite_engine.connect() as conn:
        assert set(conn.execute(select(outbox.c.sent_at)).scalars()) == {NOW}


def test_a_crash_between_publish_and_mark_sends_the_batch_again(sqlite_engine: Engine) -> None:
    ids = write_outbox(sqlite_engine, 4)
    sink = MemorySink()

    with pytest.raises(SystemExit):
        OutboxRelay(sqlite_engine, CrashAfterPublish(sink), batch_size=2).relay_batch()
    assert unsent(sqlite_engine) == ids

    assert OutboxRelay(sqlite_engine, sink, batch_size=2).drain() == 4
    sent = [notification.notification_id for notification in sink.sent]
    assert sent == [ids[0], *ids]
    assert unsent(sqlite_engine) == []


def test_refunded_amounts_are_counted_as_their_notifications_leave(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        for number, amount in enumerate((25_000, 1_500)):
            body = {"data": {"refund_minor": amount, "currency": "USD"}}
            conn.execute(
                insert(outbox).values(
                    notification_id=f"r{number}:refund.completed",
                    type="refund.completed",
                    occurred_at=AT,
                    body=json.dumps(body),
                    event_id=f"r{number}",
                )
            )
    metrics = EngineMetrics()

    OutboxRelay(sqlite_engine, MemorySink(), metrics=metrics).drain()

    assert metrics.value("recourse_refunded_minor_total", {"currency": "USD"}) == 26_500
    published = {"type": "refund.completed"}
    assert metrics.value("recourse_notifications_published_total", published) == 2


def test_the_callback_sees_each_notification_and_keep_off_keeps_nothing(
    sqlite_engine: Engine,
) -> None:
    write_outbox(sqlite_engine, 2)
    seen: list[str] = []
    sink = MemorySink(callback=lambda n: seen.append(n.type), keep=False)

    OutboxRelay(sqlite_engine, sink).drain()

    assert seen == ["dispute.opened", "dispute.opened"]
    assert sink.sent == []


def test_the_relay_loop_keeps_going_after_a_failure_and_stops_when_told(
    sqlite_engine: Engine,
) -> None:
    write_outbox(sqlite_engine, 3)
    stop = threading.Event()
    failures = [RuntimeError("broker hiccup")]
    delivered: list[str] = []

    class FlakySink:
        def publish(self, notification: OutboxNotification) -> None:
            if failures:
                raise failures.pop()
            delivered.append(notification.notification_id)
            if len(delivered) == 3:
                stop.set()

    thread = threading.Thread(
        target=OutboxRelay(sqlite_engine, FlakySink()).run,
        args=(stop,),
        kwargs={"idle_seconds": 0.01},
    )
    thread.start()
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert len(delivered) == 3


def test_each_batch_sent_is_one_log_line_and_an_empty_outbox_none(sqlite_engine: Engine) -> None:
    from structlog.testing import capture_logs

    write_outbox(sqlite_engine, 5)
    relay = OutboxRelay(sqlite_engine, MemorySink(), batch_size=3, clock=FixedClock(NOW))

    with capture_logs() as logs:
        relay.drain()

    published = [entry for entry in logs if entry["event"] == "relay.published"]
    assert [(entry["count"], entry["log_level"]) for entry in published] == [
        (3, "info"),
        (2, "info"),
    ]
    assert published[1]["last_seq"] - published[0]["first_seq"] == 4
