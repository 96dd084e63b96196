"""Dead letters without a broker: what a letter says, and what a retry sends back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.brokers.stub import _StubMessageProxy as StubMessageProxy

from messages.transport import EVENT_ACTOR, EVENTS_QUEUE, dramatiq_message_body
from workers.dlq import (
    AT,
    ERROR,
    FIRST_FAILED_AT,
    REASON,
    read_dead_letter,
    retry_body,
    write_dead_letter,
)
from workers.errors import ConfigurationError

XQ = "refunds.events.XQ"
ENVELOPE = {
    "event_id": "evt-1",
    "type": "contract.closed",
    "occurred_at": "2026-03-02T10:00:00Z",
    "schema_version": 1,
    "data": {"contract_id": "c1"},
}


def message(**options: object) -> dramatiq.Message[None]:
    return dramatiq.Message(
        queue_name=EVENTS_QUEUE,
        actor_name=EVENT_ACTOR,
        args=(ENVELOPE,),
        kwargs={},
        options=dict(options),
        message_id="m-1",
        message_timestamp=1_772_445_600_000,
    )


def test_a_letter_written_by_the_worker_reads_back_with_its_reason_and_error() -> None:
    body = message(
        **{REASON: "unknown_subject", ERROR: "UnknownSubject: unknown contract 'c1'"},
        **{AT: 1_772_445_601_500, "retries": 14},
    ).encode()

    letter = read_dead_letter(XQ, body)

    assert letter.reason == "unknown_subject"
    assert letter.error == "UnknownSubject: unknown contract 'c1'"
    assert letter.dead_lettered_at == datetime(2026, 3, 2, 10, 0, 1, 500_000, tzinfo=UTC)
    assert (letter.retries, letter.message_id, letter.actor_name) == (14, "m-1", EVENT_ACTOR)
    assert (letter.event_id, letter.event_type) == ("evt-1", "contract.closed")
    assert letter.origin_queue == EVENTS_QUEUE
    assert letter.as_json()["dead_lettered_at"] == "2026-03-02T10:00:01.500000Z"


def test_a_letter_dramatiq_rejected_on_its_own_says_no_reason_was_recorded() -> None:
    letter = read_dead_letter(XQ, message().encode())
    assert letter.reason == "no_reason_recorded"
    assert letter.dead_lettered_at is None


@pytest.mark.parametrize("body", [b"\xff\xfe", b"[1, 2]", b"not json", b'{"options": 3}'])
def test_a_body_that_is_not_a_dramatiq_message_reads_as_undecodable(body: bytes) -> None:
    letter = read_dead_letter(XQ, body)
    assert letter.reason == "undecodable"
    assert letter.message_id is None
    assert letter.body == body


def test_a_malformed_envelope_in_a_good_message_still_names_its_message() -> None:
    body = dramatiq_message_body("not an object", EVENTS_QUEUE, EVENT_ACTOR, "m-9")
    letter = read_dead_letter(XQ, body)
    assert (letter.message_id, letter.event_id, letter.event_type) == ("m-9", None, None)


def test_a_retried_letter_goes_back_without_its_failure_history() -> None:
    failed = message(
        **{REASON: "unknown_subject", ERROR: "e", AT: 1, FIRST_FAILED_AT: 0},
        retries=14,
        eta=5,
        last_error="e",
        custom="kept",
    ).copy(queue_name="refunds.events.XQ")

    sent = json.loads(retry_body(failed.encode()))

    assert sent["options"] == {"custom": "kept"}
    assert sent["queue_name"] == EVENTS_QUEUE
    assert sent["args"] == [ENVELOPE]
    assert sent["message_id"] == "m-1"


def test_on_the_stub_broker_a_dead_letter_is_the_failed_message_with_its_reason() -> None:
    broker = StubBroker(middleware=[])
    proxy = StubMessageProxy(message())

    write_dead_letter(broker, proxy, "malformed", "type: unknown event type 'x'", at_ms=42)

    assert proxy.failed
    assert proxy.options[REASON] == "malformed"
    assert proxy.options[ERROR] == "type: unknown event type 'x'"
    assert proxy.options[AT] == 42


def test_the_dead_letter_queues_need_rabbitmq() -> None:
    from workers.dlq import DeadLetterQueues

    with pytest.raises(ConfigurationError, match="BROKER_URL"):
        DeadLetterQueues(None)
