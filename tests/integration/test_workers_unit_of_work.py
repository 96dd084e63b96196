"""The worker's unit of work on PostgreSQL: connections a restart left stale cost no event a
failure, although the pool no longer checks a connection before lending it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from policy.config import load_policies
from policy.tables import inbox
from workers.unit_of_work import EventProcessor

pytestmark = pytest.mark.postgres


def contract_opened(number: int) -> dict[str, Any]:
    return {
        "event_id": f"uow-{number}",
        "type": "contract.opened",
        "occurred_at": "2026-03-02T10:00:00Z",
        "schema_version": 1,
        "data": {
            "contract_id": f"uow-c{number}",
            "kind": "fixed",
            "client_id": f"uow-client{number}",
            "creator_id": f"uow-creator{number}",
            "currency": "USD",
            "policy": "spectrum",
        },
    }


def end_every_session(engine: Engine, admin_url: str) -> int:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            ended: int = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": engine.url.database},
            ).scalar_one()
    finally:
        admin.dispose()
    return ended


def test_every_connection_a_restart_left_stale_is_replaced_without_failing_the_event(
    pg_engine: Engine, pg_admin_url: str
) -> None:
    processor = EventProcessor(pg_engine, load_policies(None, "spectrum"))
    # Four connections in the pool, as four worker threads leave it.
    held = [pg_engine.connect() for _ in range(4)]
    for conn in held:
        conn.exec_driver_sql("SELECT 1")
    for conn in held:
        conn.close()
    assert end_every_session(pg_engine, pg_admin_url) >= 4

    results = [processor(contract_opened(number)).status for number in range(4)]

    assert results == ["applied"] * 4
    with pg_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbox)).scalar_one() == 4
