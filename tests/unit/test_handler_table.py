"""The handler table (`policy.registry.HANDLERS`) against the inbound types of `messages/`: a type
with no handler would be a KeyError at run time, a handler of no type dead code."""

from __future__ import annotations

from typing import get_type_hints

from messages.registry import EVENT_MODELS
from policy.registry import HANDLERS


def test_every_inbound_type_has_a_handler() -> None:
    missing = sorted(set(EVENT_MODELS) - set(HANDLERS))
    assert not missing, f"inbound types with no entry in policy.registry.HANDLERS: {missing}"


def test_the_table_names_only_inbound_types() -> None:
    unknown = sorted(set(HANDLERS) - set(EVENT_MODELS))
    assert not unknown, f"policy.registry.HANDLERS names types messages/ does not: {unknown}"


def test_each_handler_takes_the_envelope_of_its_own_type() -> None:
    mismatched = {
        event_type: get_type_hints(handler).get("event")
        for event_type, handler in HANDLERS.items()
        if get_type_hints(handler).get("event") is not EVENT_MODELS.get(event_type)
    }
    assert not mismatched, f"handlers whose `event` is another type's envelope: {mismatched}"
