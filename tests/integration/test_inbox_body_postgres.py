"""PostgreSQL stores the inbox body as the canonical text it is given (`SerializedJson`, a
`json` column), through the workers' pipelined writes as through a plain insert."""

from __future__ import annotations

import json

from sqlalchemy import Engine, insert, select, text

from ledger.pipelining import deferred_writes
from messages import parse_event
from policy.apply import apply_event, canonical_body
from policy.config import load_policies
from policy.tables import inbox


def test_the_inbox_body_is_stored_as_the_text_its_digest_is_of(pg_engine: Engine) -> None:
    raw = {
        "event_id": "evt-1",
        "type": "contract.opened",
        "occurred_at": "2026-03-02T10:00:00Z",
        "schema_version": 1,
        "data": {
            "contract_id": "c-1",
            "kind": "fixed",
            "client_id": "zoë",
            "creator_id": "u-creator",
            "currency": "USD",
        },
    }
    event = parse_event(json.dumps(raw))
    with pg_engine.begin() as conn, deferred_writes(conn):
        assert apply_event(conn, event, load_policies()).status == "applied"
    with pg_engine.begin() as conn:
        conn.execute(
            insert(inbox),
            {
                "event_id": "evt-plain",
                "type": "contract.opened",
                "body_sha256": "0" * 64,
                "body": '{"a":1}',
                "occurred_at": event.occurred_at,
                "result": "applied",
            },
        )
        stored = dict(
            conn.execute(text("SELECT event_id, body::text FROM inbox ORDER BY event_id")).all()
        )
        read = conn.execute(select(inbox.c.body).where(inbox.c.event_id == "evt-1")).scalar_one()
    assert stored == {
        "evt-1": canonical_body(event.model_dump(mode="json")),
        "evt-plain": '{"a":1}',
    }
    assert read == event.model_dump(mode="json")
