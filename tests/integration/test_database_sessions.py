"""PostgreSQL sessions as `make_engine` opens them: a transaction left idle by a stuck thread
is ended by the server, so its row locks do not hold a contract's events back for good."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from workers.database import IDLE_IN_TRANSACTION_TIMEOUT_MS, make_engine

pytestmark = pytest.mark.postgres


def _timeout_ms(engine: Engine) -> int:
    with engine.connect() as conn:
        shown = conn.execute(
            text(
                "SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'"
            )
        ).scalar_one()
        conn.rollback()
    return int(shown)


def test_every_session_ends_a_transaction_left_idle(pg_engine: Engine) -> None:
    assert _timeout_ms(pg_engine) == IDLE_IN_TRANSACTION_TIMEOUT_MS


def test_other_connect_arguments_keep_the_timeout(pg_url: str) -> None:
    engine = make_engine(pg_url, connect_args={"connect_timeout": 5})
    try:
        assert _timeout_ms(engine) == IDLE_IN_TRANSACTION_TIMEOUT_MS
    finally:
        engine.dispose()


def test_a_caller_may_choose_its_own_session_options(pg_url: str) -> None:
    engine = make_engine(
        pg_url, connect_args={"options": "-c idle_in_transaction_session_timeout=0"}
    )
    try:
        assert _timeout_ms(engine) == 0
    finally:
        engine.dispose()
