"""Every inbound type has an ordering key (MESSAGES.md, "Ordering")."""

from __future__ import annotations

import pytest

from messages import EVENT_MODELS, parse_event
from messages.ordering import KEY_FIELD_BY_TYPE, TICK_KEY, ordering_key
from tests.unit.test_messages import VALID_DATA, envelope


def test_the_examples_cover_every_type() -> None:
    assert set(VALID_DATA) == set(EVENT_MODELS)


@pytest.mark.parametrize("type_", sorted(EVENT_MODELS))
def test_every_type_has_an_ordering_key(type_: str) -> None:
    event = parse_event(envelope(type_))

    key = ordering_key(event)

    if type_ == TICK_KEY:
        assert key == TICK_KEY
    else:
        field = KEY_FIELD_BY_TYPE.get(type_, "contract_id")
        assert key == VALID_DATA[type_][field]


@pytest.mark.parametrize(
    "type_",
    [
        "refund.declined",
        "refund.escalated",
        "dispute.resolved",
        "dispute.evidence_added",
        "refund.approved",
        "dispute.opened",
    ],
)
def test_every_refund_and_dispute_event_is_ordered_by_its_contract(type_: str) -> None:
    body = envelope(type_)
    body["data"]["contract_id"] = "contract-9"

    assert ordering_key(parse_event(body)) == "contract-9"
