"""The inbox stores an event's body as the canonical text its digest is computed from
(`SerializedJson`), written once, read back as JSON's values."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.exc import StatementError

from messages import parse_event
from policy.apply import apply_event, body_digest, canonical_body
from policy.config import load_policies
from policy.tables import inbox
from store.columns import SerializedJson
from store.prepared import Prepared
from workers.database import make_engine, migrate

_PROBES = MetaData()
_probe = Table(
    "probe",
    _PROBES,
    Column("id", String(8), primary_key=True),
    Column("body", SerializedJson, nullable=False),
)


@pytest.fixture
def engine() -> Engine:
    made = create_engine("sqlite://")
    _PROBES.create_all(made)
    return made


def test_text_goes_in_as_it_is_and_reads_back_as_values(engine: Engine) -> None:
    text = '{"amount_minor":100,"name":"Zoë"}'
    with engine.begin() as conn:
        Prepared(insert(_probe)).write(conn, {"id": "a", "body": text})
        conn.execute(insert(_probe), {"id": "b", "body": "[1,2]"})
        stored = conn.exec_driver_sql("SELECT body FROM probe ORDER BY id").scalars().all()
        read = conn.execute(select(_probe.c.body).order_by(_probe.c.id)).scalars().all()
    assert stored == [text, "[1,2]"]
    assert read == [{"amount_minor": 100, "name": "Zoë"}, [1, 2]]


@pytest.mark.parametrize("value", [{"amount_minor": 100}, [1, 2], 3, None])
def test_anything_but_text_is_refused_before_the_driver_sees_it(
    engine: Engine, value: object
) -> None:
    # Bound as JSON would store a mapping; bound as it is, the driver would store its repr.
    with engine.begin() as conn, pytest.raises(StatementError, match="takes JSON text"):
        conn.execute(insert(_probe), {"id": "c", "body": value})


def test_the_canonical_text_ignores_key_order_and_keeps_non_ascii() -> None:
    one = canonical_body({"b": 1, "a": {"y": "é", "x": [2, 1]}})
    other = canonical_body({"a": {"x": [2, 1], "y": "é"}, "b": 1})
    assert one == other == '{"a":{"x":[2,1],"y":"é"},"b":1}'


def test_the_inbox_row_holds_the_text_its_digest_is_of() -> None:
    made = make_engine("sqlite://")
    migrate(made)
    raw = {
        "event_id": "evt-1",
        "type": "contract.opened",
        "occurred_at": "2026-03-02T10:00:00Z",
        "schema_version": 1,
        "data": {
            "contract_id": "c-1",
            "kind": "fixed",
            "client_id": "u-client",
            "creator_id": "u-creator",
            "currency": "USD",
        },
    }
    event = parse_event(json.dumps(raw))
    with made.begin() as conn:
        apply_event(conn, event, load_policies())
        text, digest = conn.exec_driver_sql(
            "SELECT body, body_sha256 FROM inbox WHERE event_id = 'evt-1'"
        ).one()
        read = conn.execute(select(inbox.c.body)).scalar_one()
    assert text == canonical_body(event.model_dump(mode="json"))
    assert digest == body_digest(text) == hashlib.sha256(text.encode()).hexdigest()
    assert read == event.model_dump(mode="json")


def test_the_digest_of_a_stored_event_is_the_one_earlier_releases_stored() -> None:
    # Computed by the release before the body was stored as text (03f7e33): an event applied
    # then and delivered again now must still be a duplicate, not an idempotency conflict.
    raw = {
        "event_id": "evt-2",
        "type": "refund.requested",
        "occurred_at": "2026-03-04T12:30:00+01:00",
        "schema_version": 1,
        "data": {
            "contract_id": "c-1",
            "request_id": "r-1",
            "target_id": "m-1",
            "amount_minor": 12345,
            "reason": "Zoë: pas ce qui était convenu",
        },
    }
    canonical = canonical_body(parse_event(json.dumps(raw)).model_dump(mode="json"))

    assert body_digest(canonical) == (
        "87f6fd542c6a9f3e7d22a37e9db8c86f3081b1b42b51d12f580ecb73105f40d7"
    )
