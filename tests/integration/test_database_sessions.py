"""PostgreSQL sessions as `make_engine` opens them: a transaction left idle by a stuck thread
is ended by the server, so its row locks do not hold a contract's events back for good; a
value the deployment chose is kept, and the relay, which waits on the broker inside its
transaction, is exempt."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, func, insert, select, text

from policy.tables import outbox
from workers.database import IDLE_IN_TRANSACTION_TIMEOUT_MS, make_engine, migrate
from workers.relay import OutboxNotification, OutboxRelay

pytestmark = pytest.mark.postgres


def _setting(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        shown = conn.execute(
            text("SELECT setting FROM pg_settings WHERE name = :name"), {"name": name}
        ).scalar_one()
        conn.rollback()
    return str(shown)


def _idle_timeout_ms(engine: Engine) -> int:
    return int(_setting(engine, "idle_in_transaction_session_timeout"))


def test_every_session_ends_a_transaction_left_idle(pg_engine: Engine) -> None:
    assert _idle_timeout_ms(pg_engine) == IDLE_IN_TRANSACTION_TIMEOUT_MS


def test_other_session_options_of_the_url_stay_beside_it(pg_url: str) -> None:
    engine = make_engine(f"{pg_url}?options={quote('-c statement_timeout=1234')}")
    try:
        assert _setting(engine, "statement_timeout") == "1234"
        assert _idle_timeout_ms(engine) == IDLE_IN_TRANSACTION_TIMEOUT_MS
    finally:
        engine.dispose()


def test_a_value_the_deployment_chose_is_kept(pg_url: str) -> None:
    engine = make_engine(
        pg_url, connect_args={"options": "-c idle_in_transaction_session_timeout=0"}
    )
    try:
        assert _idle_timeout_ms(engine) == 0
    finally:
        engine.dispose()


class SlowConfirms:
    """A broker whose confirms take `seconds` each (a memory alarm, a slow disk)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.published: list[str] = []

    def publish(self, notification: OutboxNotification) -> None:
        time.sleep(self.seconds)
        self.published.append(notification.notification_id)


def test_the_relay_may_wait_on_the_broker_longer_than_the_idle_limit(pg_url: str) -> None:
    # The limit scaled down to 1 s; three confirms of 0.4 s keep the batch idle for 1.2 s.
    engine = make_engine(
        pg_url, connect_args={"options": "-c idle_in_transaction_session_timeout=1000"}
    )
    try:
        migrate(engine)
        at = datetime(2026, 3, 2, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(outbox),
                [
                    {
                        "notification_id": f"n{number}",
                        "type": "refund.completed",
                        "occurred_at": at,
                        "body": "{}",
                        "event_id": f"e{number}",
                    }
                    for number in range(3)
                ],
            )
        sink = SlowConfirms(0.4)

        assert OutboxRelay(engine, sink, batch_size=10).relay_batch() == 3

        assert sink.published == ["n0", "n1", "n2"]
        with engine.connect() as conn:
            unsent = conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            ).scalar_one()
            conn.rollback()
        assert unsent == 0
    finally:
        engine.dispose()
