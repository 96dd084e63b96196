"""PostgreSQL stores the inbox body as the canonical text it is given (`SerializedJson`, a
`json` column), through the workers' pipelined writes as through a plain insert."""

from __future__ import annotations

import json

from sqlalchemy import Engine, insert, select, text

from messages import parse_event
from policy.apply import apply_event, canonical_body
from policy.config import load_policies
from policy.tables import inbox
from store.pipelining import deferred_writes


def test_the_inbox_body_is_stored_as_the_text_its_digest_is_of(pg_engine: Engine) -> None:
    # Ids are printable ASCII (MESSAGES.md, "Limits"): the text beyond ASCII is in `reason`.
    setup = [
        {
            "event_id": "evt-0a",
            "type": "contract.opened",
            "data": {
                "contract_id": "c-1",
                "kind": "fixed",
                "client_id": "u-client",
                "creator_id": "u-creator",
                "currency": "USD",
            },
        },
        {
            "event_id": "evt-0b",
            "type": "milestone.funded",
            "data": {
                "contract_id": "c-1",
                "milestone_id": "m-1",
                "payment_id": "p-1",
                "amount_minor": 50000,
                "processor_fee_minor": 0,
            },
        },
    ]
    raw = {
        "event_id": "evt-1",
        "type": "refund.requested",
        "data": {
            "request_id": "r-1",
            "contract_id": "c-1",
            "target_id": "m-1",
            "amount_minor": 1000,
            "reason": "Zoë's draft is not what we agreed",
        },
    }
    common = {"occurred_at": "2026-03-02T10:00:00Z", "schema_version": 1}
    for body in setup:
        with pg_engine.begin() as conn, deferred_writes(conn):
            assert apply_event(conn, parse_event({**body, **common}), load_policies())
    event = parse_event(json.dumps({**raw, **common}))
    with pg_engine.begin() as conn, deferred_writes(conn):
        assert apply_event(conn, event, load_policies()).status == "applied"
    with pg_engine.begin() as conn:
        conn.execute(
            insert(inbox),
            {
                "event_id": "evt-plain",
                "type": "refund.requested",
                "body_sha256": "0" * 64,
                "body": '{"a":1}',
                "occurred_at": event.occurred_at,
                "result": "applied",
            },
        )
        stored = dict(
            conn.execute(
                text(
                    "SELECT event_id, body::text FROM inbox"
                    " WHERE event_id IN ('evt-1', 'evt-plain') ORDER BY event_id"
                )
            ).all()
        )
        read = conn.execute(select(inbox.c.body).where(inbox.c.event_id == "evt-1")).scalar_one()
    assert stored == {
        "evt-1": canonical_body(event.model_dump(mode="json")),
        "evt-plain": '{"a":1}',
    }
    assert read == event.model_dump(mode="json")
