"""Regression tests of the defects the fault runs found, each at the smallest scale that shows
it (no server unless the defect needs one)."""

from __future__ import annotations

from messages.transport import EVENT_ACTOR, EVENTS_QUEUE, dead_letter_queue, dramatiq_message_body
from workers.dlq import read_dead_letter

EVENTS_XQ = dead_letter_queue(EVENTS_QUEUE)


def test_a_letter_for_an_actor_no_worker_declares_says_unknown_actor() -> None:
    """Dramatiq's consumer nacks such a message before any middleware runs, so it reached the
    dead-letter queue without a reason (`no_reason_recorded`)."""
    body = dramatiq_message_body({"event_id": "e-1"}, EVENTS_QUEUE, "handle_nothing", "m-1")

    letter = read_dead_letter(EVENTS_XQ, body)

    assert (letter.reason, letter.actor_name, letter.event_id) == (
        "unknown_actor",
        "handle_nothing",
        "e-1",
    )


def test_a_letter_of_an_engine_actor_without_a_reason_still_says_none_was_recorded() -> None:
    body = dramatiq_message_body({"event_id": "e-1"}, EVENTS_QUEUE, EVENT_ACTOR, "m-1")

    assert read_dead_letter(EVENTS_XQ, body).reason == "no_reason_recorded"
