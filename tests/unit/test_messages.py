"""The inbound contract of MESSAGES.md: every type reads when valid and is refused, naming the
field at fault, when not."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from messages import EVENT_MODELS, Envelope, MalformedMessage, parse_event
from messages.fields import MAX_MINOR
from messages.inbound import (
    ContractOpened,
    DisputeResolvedEvent,
    HourlyInvoicePaidEvent,
    MilestoneFundedEvent,
    PointsAwarded,
    RefundApproved,
)
from messages.registry import MAX_BODY_BYTES

VALID_DATA: dict[str, dict[str, Any]] = {
    "contract.opened": {
        "contract_id": "c1",
        "kind": "fixed",
        "client_id": "u1",
        "creator_id": "u2",
        "currency": "USD",
        "policy": "spectrum",
        "client_jurisdiction": "DE",
    },
    "contract.closed": {"contract_id": "c1"},
    "milestone.funded": {
        "contract_id": "c1",
        "milestone_id": "m1",
        "payment_id": "p1",
        "amount_minor": 50000,
        "processor_fee_minor": 1480,
    },
    "work.started": {"contract_id": "c1", "milestone_id": "m1", "evidence": "upload"},
    "milestone.released": {"contract_id": "c1", "milestone_id": "m1", "released_by": "client"},
    "hourly.invoice_paid": {
        "contract_id": "c2",
        "invoice_id": "i1",
        "period_start": "2026-03-02",
        "payment_id": "p2",
        "amount_minor": 120000,
        "processor_fee_minor": 0,
    },
    "refund.requested": {
        "request_id": "r1",
        "contract_id": "c1",
        "target_id": "m1",
        "amount_minor": 20000,
        "reason": "the logo was never delivered",
    },
    "refund.approved": {
        "contract_id": "c1",
        "target_id": "m1",
        "amount_minor": 20000,
        "approved_by": "creator",
        "request_id": "r1",
        "decided_by": "op-7",
    },
    "refund.declined": {
        "request_id": "r1",
        "contract_id": "c1",
        "declined_by": "support",
        "decided_by": "op-7",
    },
    "refund.escalated": {"request_id": "r1", "contract_id": "c1"},
    "dispute.opened": {
        "dispute_id": "d1",
        "contract_id": "c1",
        "target_id": "m1",
        "reason": "work does not match the brief",
    },
    "dispute.resolved": {
        "dispute_id": "d1",
        "contract_id": "c1",
        "outcome": "partial_refund",
        "refund_amount_minor": 10000,
        "decided_by": "op-7",
    },
    "dispute.evidence_added": {
        "evidence_id": "ev1",
        "dispute_id": "d1",
        "contract_id": "c1",
        "party": "client",
        "text": "The brief asked for a vector logo.\n\tSee the attached export.",
        "attachments": [
            {
                "name": "export.pdf",
                "media_type": "application/pdf",
                "size_bytes": 48213,
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "url": "https://files.example.com/ev1/export.pdf",
            }
        ],
    },
    "chargeback.opened": {
        "chargeback_id": "cb1",
        "payment_id": "p1",
        "amount_minor": 50000,
        "issuer_fee_minor": 1500,
    },
    "chargeback.resolved": {"chargeback_id": "cb1", "outcome": "client_lost"},
    "processor.fee_refunded": {"payment_id": "p1", "amount_minor": 1480},
    "addon.purchased": {
        "addon_id": "a1",
        "user_id": "u2",
        "kind": "profile_boost",
        "payment_id": "p3",
        "amount_minor": 999,
        "currency": "EUR",
    },
    "addon.started": {"addon_id": "a1"},
    "addon.refund_requested": {"addon_id": "a1"},
    "points.awarded": {"user_id": "u2", "points": 150, "milestone_id": "m1"},
    "points.cashout_paid": {"cashout_id": "co1", "user_id": "u2", "points": 100},
    "points.cashout_reversed": {"cashout_id": "co1", "fraud_claim_id": "f1"},
    "withdrawal.requested": {
        "withdrawal_id": "w1",
        "user_id": "u2",
        "amount_minor": 30000,
        "currency": "USD",
    },
    "deadline.tick": {},
}

# One defect per type, each in a field that type alone has (or a rule only it applies), with
# the dotted path that MalformedMessage must name.
INVALID_DATA: dict[str, tuple[dict[str, Any], str]] = {
    "contract.opened": ({"kind": "retainer"}, "data.kind"),
    "contract.closed": ({"contract_id": ""}, "data.contract_id"),
    "milestone.funded": ({"processor_fee_minor": -1}, "data.processor_fee_minor"),
    "work.started": ({"evidence": "promise"}, "data.evidence"),
    "milestone.released": ({"released_by": "creator"}, "data.released_by"),
    "hourly.invoice_paid": ({"period_start": "2026-03-04"}, "data.period_start"),
    "refund.requested": ({"reason": ""}, "data.reason"),
    "refund.approved": ({"approved_by": "client"}, "data.approved_by"),
    "refund.declined": ({"declined_by": "client"}, "data.declined_by"),
    "refund.escalated": ({"request_id": 7}, "data.request_id"),
    "dispute.opened": ({"target_id": None}, "data.target_id"),
    "dispute.resolved": ({"outcome": "split"}, "data.outcome"),
    "dispute.evidence_added": ({"party": "support"}, "data.party"),
    "chargeback.opened": ({"issuer_fee_minor": 1.5}, "data.issuer_fee_minor"),
    "chargeback.resolved": ({"outcome": "pending"}, "data.outcome"),
    "processor.fee_refunded": ({"amount_minor": 0}, "data.amount_minor"),
    "addon.purchased": ({"kind": "sticker"}, "data.kind"),
    "addon.started": ({"addon_id": "a" * 129}, "data.addon_id"),
    "addon.refund_requested": ({"addon_id": " a1"}, "data.addon_id"),
    "points.awarded": ({"points": 0}, "data.points"),
    "points.cashout_paid": ({"points": True}, "data.points"),
    "points.cashout_reversed": ({"fraud_claim_id": ""}, "data.fraud_claim_id"),
    "withdrawal.requested": ({"currency": "usd"}, "data.currency"),
    "deadline.tick": ({"now": "2026-03-02T10:00:00Z"}, "data.now"),
}

MESSAGES_MD_TYPES = {
    "contract.opened",
    "contract.closed",
    "milestone.funded",
    "work.started",
    "milestone.released",
    "hourly.invoice_paid",
    "refund.requested",
    "refund.approved",
    "refund.declined",
    "refund.escalated",
    "dispute.opened",
    "dispute.resolved",
    "dispute.evidence_added",
    "chargeback.opened",
    "chargeback.resolved",
    "processor.fee_refunded",
    "addon.purchased",
    "addon.started",
    "addon.refund_requested",
    "points.awarded",
    "points.cashout_paid",
    "points.cashout_reversed",
    "withdrawal.requested",
    "deadline.tick",
}


def envelope(type_: str = "milestone.funded", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": "evt-7f3a",
        "type": type_,
        "occurred_at": "2026-03-02T10:00:00Z",
        "schema_version": 1,
        "data": copy.deepcopy(VALID_DATA[type_]),
    }
    body.update(changes)
    return body


def with_data(type_: str, **changes: Any) -> dict[str, Any]:
    body = envelope(type_)
    body["data"].update(changes)
    return body


def refused(raw: object) -> MalformedMessage:
    with pytest.raises(MalformedMessage) as caught:
        parse_event(raw)
    return caught.value


def test_the_registry_holds_exactly_the_types_of_messages_md() -> None:
    assert set(EVENT_MODELS) == MESSAGES_MD_TYPES
    assert set(VALID_DATA) == MESSAGES_MD_TYPES
    assert set(INVALID_DATA) == MESSAGES_MD_TYPES


@pytest.mark.parametrize("type_", sorted(MESSAGES_MD_TYPES))
def test_a_valid_body_of_each_type_reads_into_its_model(type_: str) -> None:
    body = envelope(type_)

    event = parse_event(json.dumps(body).encode())

    assert isinstance(event, EVENT_MODELS[type_])
    assert event.type == type_
    assert event.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert event.model_dump(mode="json") == body


@pytest.mark.parametrize("type_", sorted(MESSAGES_MD_TYPES))
def test_an_invalid_body_of_each_type_names_its_field(type_: str) -> None:
    changes, field = INVALID_DATA[type_]

    error = refused(with_data(type_, **changes))

    assert error.fields == [field]


@pytest.mark.parametrize("type_", sorted(t for t, data in VALID_DATA.items() if data))
def test_a_missing_data_field_is_named(type_: str) -> None:
    body = envelope(type_)
    first = next(iter(body["data"]))
    del body["data"][first]

    assert refused(body).fields == [f"data.{first}"]


@pytest.mark.parametrize("field", ["event_id", "type", "occurred_at", "schema_version", "data"])
def test_a_missing_envelope_field_is_named(field: str) -> None:
    body = envelope()
    del body[field]

    assert refused(body).fields == [field]


def test_optional_fields_may_be_left_out() -> None:
    opened = with_data("contract.opened")
    del opened["data"]["policy"], opened["data"]["client_jurisdiction"]
    approved = with_data("refund.approved")
    del approved["data"]["request_id"]
    awarded = with_data("points.awarded")
    del awarded["data"]["milestone_id"]

    opened_data = parse_event(opened).data
    approved_data = parse_event(approved).data
    awarded_data = parse_event(awarded).data
    assert isinstance(opened_data, ContractOpened)
    assert (opened_data.policy, opened_data.client_jurisdiction) == (None, None)
    assert isinstance(approved_data, RefundApproved)
    assert approved_data.request_id is None
    assert isinstance(awarded_data, PointsAwarded)
    assert awarded_data.milestone_id is None


def test_an_extra_field_in_data_is_refused() -> None:
    assert refused(with_data("milestone.funded", note="hi")).fields == ["data.note"]


def test_an_extra_field_in_the_envelope_is_refused() -> None:
    assert refused(envelope(trace_id="t1")).fields == ["trace_id"]


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        (500.0, "float"),
        (500.5, "fractional float"),
        ("500", "string"),
        (-1, "negative"),
        (0, "zero where money moves"),
        (True, "bool"),
        (MAX_MINOR + 1, "past 10^15"),
        (2**63, "past a BIGINT"),
        (1e300, "huge float"),
        (None, "null"),
    ],
)
def test_a_bad_amount_is_refused(amount: object, why: str) -> None:
    error = refused(with_data("milestone.funded", amount_minor=amount))

    assert error.fields == ["data.amount_minor"], why


def test_an_amount_past_the_limit_is_refused_naming_the_limit() -> None:
    error = refused(with_data("milestone.funded", amount_minor=10**15 + 1))

    assert error.fields == ["data.amount_minor"]
    assert "1000000000000000" in str(error)


def test_the_largest_amount_is_accepted() -> None:
    event = parse_event(with_data("milestone.funded", amount_minor=MAX_MINOR))

    assert isinstance(event, MilestoneFundedEvent)
    assert event.data.amount_minor == MAX_MINOR


def test_a_float_amount_is_refused_in_raw_json_too() -> None:
    raw = json.dumps(envelope()).replace('"amount_minor": 50000', '"amount_minor": 50000.0')

    assert refused(raw.encode()).fields == ["data.amount_minor"]


def test_a_fee_may_be_zero_but_not_negative() -> None:
    parse_event(with_data("milestone.funded", processor_fee_minor=0))

    assert refused(with_data("milestone.funded", processor_fee_minor=-5)).fields == [
        "data.processor_fee_minor"
    ]


@pytest.mark.parametrize(
    "when",
    [
        "2026-03-02T10:00:00",
        "2026-03-02 10:00:00",
        "2026-03-02",
    ],
)
def test_a_naive_time_is_refused(when: str) -> None:
    error = refused(envelope(occurred_at=when))

    assert error.fields == ["occurred_at"]
    assert "offset" in str(error)


@pytest.mark.parametrize("when", [1772445600, 1772445600.0, "1772445600", "tomorrow", None])
def test_a_time_that_is_not_iso_8601_text_is_refused(when: object) -> None:
    assert refused(envelope(occurred_at=when)).fields == ["occurred_at"]


def test_a_time_with_an_offset_is_read_as_utc() -> None:
    event = parse_event(envelope(occurred_at="2026-03-02T12:00:00+02:00"))

    assert event.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert event.occurred_at.tzinfo is UTC


@pytest.mark.parametrize("type_", ["", "milestone.paid", "MILESTONE.FUNDED", "deadline.tock"])
def test_an_unknown_type_is_refused(type_: str) -> None:
    error = refused(envelope(type=type_))

    assert error.fields == ["type"]
    assert "unknown" in str(error)


def test_a_type_that_is_not_a_string_is_refused() -> None:
    assert refused(envelope(type=["milestone.funded"])).fields == ["type"]


@pytest.mark.parametrize(
    ("event_id", "why"),
    [
        ("", "empty"),
        ("x" * 129, "129 characters"),
        (" evt-1", "leading space"),
        ("evt-1\n", "trailing newline"),
        ("evt-1\r", "carriage return"),
        ("evt\u20281", "line separator"),
        ("evt 1", "inner space"),
        ("evt-\u0441", "Cyrillic letter"),
        ("evt-\x7f", "DEL"),
        (17, "integer"),
    ],
)
def test_a_bad_event_id_is_refused(event_id: object, why: str) -> None:
    assert refused(envelope(event_id=event_id)).fields == ["event_id"], why


def test_every_printable_ascii_character_may_make_an_id() -> None:
    every = "".join(chr(code) for code in range(ord("!"), ord("~") + 1))

    assert parse_event(with_data("contract.closed", contract_id=every)).data.contract_id == every


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        ("", "empty"),
        ("x" * 2001, "2,001 characters"),
        ("two\nlines", "line feed"),
        ("tab\there", "tab"),
        ("bell\x07", "C0 control"),
        ("next\x85line", "C1 control"),
        ("del\x7f", "DEL"),
    ],
)
def test_a_bad_reason_is_refused(reason: str, why: str) -> None:
    assert refused(with_data("refund.requested", reason=reason)).fields == ["data.reason"], why


def test_a_reason_of_2000_characters_of_any_script_is_accepted() -> None:
    reason = "Zoë's логотип " * 142 + "x" * 12

    assert len(reason) == 2000
    parse_event(with_data("dispute.opened", reason=reason))


@pytest.mark.parametrize(
    "when",
    [
        "2026-03-02T10:00Z",
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "2026-02-29T10:00:00Z",
        "2026-03-02T24:00:00Z",
        "2026-03-02T10:00:00+0100",
        "2026-03-02T10:00:00.1234567Z",
        "2026-03-02t10:00:00z",
        "2026-03-02T10:00:00Z\n",
        "\u0662026-03-02T10:00:00Z",
    ],
)
def test_a_time_outside_the_limits_is_refused(when: str) -> None:
    assert refused(envelope(occurred_at=when)).fields == ["occurred_at"]


@pytest.mark.parametrize(
    "when",
    [
        "2000-01-01T00:00:00Z",
        "2999-12-31T23:59:59.999999-05:00",
        "2024-02-29T12:00:00+01:00",
        "2400-02-29T12:00:00Z",
    ],
)
def test_a_time_within_the_limits_is_read(when: str) -> None:
    assert parse_event(envelope(occurred_at=when)).occurred_at.tzinfo is UTC


def test_the_operator_who_decided_is_optional() -> None:
    for type_ in ("refund.approved", "refund.declined", "dispute.resolved"):
        body = with_data(type_)
        del body["data"]["decided_by"]
        assert parse_event(body).data.decided_by is None  # type: ignore[attr-defined]
        assert refused(with_data(type_, decided_by="op 7")).fields == ["data.decided_by"]


@pytest.mark.parametrize("type_", ["refund.declined", "refund.escalated", "dispute.resolved"])
def test_the_decisions_name_their_contract(type_: str) -> None:
    body = with_data(type_)
    del body["data"]["contract_id"]

    assert refused(body).fields == ["data.contract_id"]


def _attachment(**changes: Any) -> dict[str, Any]:
    attachment = dict(VALID_DATA["dispute.evidence_added"]["attachments"][0])
    attachment.update(changes)
    return attachment


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"text": "x" * 10001}, "data.text"),
        ({"text": "windows\r\nline"}, "data.text"),
        ({"text": "nul\x00"}, "data.text"),
        ({"party": "dispute_team"}, "data.party"),
        ({"attachments": [_attachment()] * 21}, "data.attachments"),
        ({"attachments": [_attachment(sha256="AB" * 32)]}, "data.attachments.0.sha256"),
        ({"attachments": [_attachment(sha256="ab" * 31)]}, "data.attachments.0.sha256"),
        ({"attachments": [_attachment(url="http://x.example/f")]}, "data.attachments.0.url"),
        ({"attachments": [_attachment(url="https:// x")]}, "data.attachments.0.url"),
        ({"attachments": [_attachment(size_bytes=1.0)]}, "data.attachments.0.size_bytes"),
        ({"attachments": [_attachment(size_bytes=-1)]}, "data.attachments.0.size_bytes"),
        ({"attachments": [_attachment(media_type="pdf")]}, "data.attachments.0.media_type"),
        ({"attachments": [_attachment(name="")]}, "data.attachments.0.name"),
        ({"attachments": [_attachment(extra=1)]}, "data.attachments.0.extra"),
    ],
)
def test_bad_evidence_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    assert refused(with_data("dispute.evidence_added", **changes)).fields == [field]


def test_evidence_may_have_no_text_and_twenty_attachments() -> None:
    body = with_data("dispute.evidence_added", text="", attachments=[_attachment()] * 20)

    assert len(parse_event(body).data.attachments) == 20  # type: ignore[attr-defined]


def test_an_event_id_of_128_characters_is_accepted() -> None:
    assert parse_event(envelope(event_id="x" * 128)).event_id == "x" * 128


def test_an_empty_data_id_is_refused() -> None:
    assert refused(with_data("milestone.funded", milestone_id="")).fields == ["data.milestone_id"]


@pytest.mark.parametrize("version", [2, 0, True, 1.0, "1", None])
def test_only_schema_version_1_is_read(version: object) -> None:
    assert refused(envelope(schema_version=version)).fields == ["schema_version"]


@pytest.mark.parametrize(
    "period_start", ["2026-03-03", "2026-03-08", "2026-3-2", "2026-03-02T00:00:00Z", 20260302]
)
def test_period_start_must_be_a_monday_written_yyyy_mm_dd(period_start: object) -> None:
    body = with_data("hourly.invoice_paid", period_start=period_start)

    assert refused(body).fields == ["data.period_start"]


def test_period_start_on_a_monday_is_read_as_a_date() -> None:
    event = parse_event(with_data("hourly.invoice_paid", period_start="2026-03-09"))

    assert isinstance(event, HourlyInvoicePaidEvent)
    assert event.data.period_start == date(2026, 3, 9)


def test_a_partial_refund_without_an_amount_is_refused() -> None:
    body = with_data("dispute.resolved")
    del body["data"]["refund_amount_minor"]

    error = refused(body)

    assert error.fields == ["data.refund_amount_minor"]
    assert "partial_refund" in str(error)


@pytest.mark.parametrize("outcome", ["full_refund", "release_to_creator"])
def test_an_amount_with_another_outcome_is_refused(outcome: str) -> None:
    body = with_data("dispute.resolved", outcome=outcome)

    assert refused(body).fields == ["data.refund_amount_minor"]


@pytest.mark.parametrize("outcome", ["full_refund", "release_to_creator"])
def test_other_outcomes_need_no_amount(outcome: str) -> None:
    body = with_data("dispute.resolved", outcome=outcome)
    del body["data"]["refund_amount_minor"]

    event = parse_event(body)

    assert isinstance(event, DisputeResolvedEvent)
    assert event.data.refund_amount_minor is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"event_id": "evt-1",',
        b"\xff\xfe\x00",
        b"",
        b'{"event_id": NaN}',
        b'{"event_id": "a", "event_id": "b"}',
    ],
)
def test_bytes_that_are_not_json_are_refused(raw: bytes) -> None:
    error = refused(raw)

    assert error.fields == ["body"]
    assert "JSON" in str(error)


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8"),
        lambda text: text.encode("utf-8-sig"),
        lambda text: text.encode("utf-16"),
        lambda text: bytearray(text.encode("utf-32-le")),
    ],
    ids=["utf-8", "utf-8 with BOM", "utf-16", "utf-32-le bytearray"],
)
def test_bytes_are_read_in_any_encoding_json_allows(encode: Any) -> None:
    # The body is decoded as `json.loads` would, then read by the one shared decoder.
    text = json.dumps(with_data("refund.requested", reason="Zoë's draft"))

    assert parse_event(encode(text)) == parse_event(text)


def test_text_starting_with_a_byte_order_mark_is_refused() -> None:
    text = json.dumps(with_data("refund.requested"))

    error = refused("\ufeff" + text)

    assert error.fields == ["body"]
    assert "Unexpected UTF-8 BOM" in str(error)


def test_a_key_repeated_in_the_data_is_refused_and_named() -> None:
    body = json.dumps(with_data("refund.requested"))
    raw = body.replace('"reason":', '"reason": "other", "reason":', 1)

    error = refused(raw.encode())

    assert error.fields == ["body"]
    assert "'reason' appears more than once" in str(error)


@pytest.mark.parametrize("raw", [b"[]", b'"milestone.funded"', b"42", b"null", [1, 2]])
def test_json_that_is_not_an_object_is_refused(raw: object) -> None:
    assert refused(raw).fields == ["body"]


def _nested(depth: int) -> dict[str, Any]:
    """A valid envelope whose body nests `depth` levels (the envelope is level 1)."""
    body = with_data("dispute.evidence_added")
    # The envelope and `data` are two levels; each list around the string adds one.
    value: Any = "x"
    for _ in range(depth - 2):
        value = [value]
    body["data"]["attachments"] = value
    return body


def test_a_body_nested_32_levels_reaches_the_models() -> None:
    # Within the limit: refused by the model (the attachment is not a list), not the reader.
    error = refused(json.dumps(_nested(32)))

    assert error.fields[0].startswith("data.attachments")


@pytest.mark.parametrize("form", ["text", "bytes", "mapping"])
def test_a_body_nested_33_levels_is_refused_before_it_is_decoded(form: str) -> None:
    body = _nested(33)
    raw: object = {"text": json.dumps(body), "bytes": json.dumps(body).encode(), "mapping": body}[
        form
    ]

    error = refused(raw)

    assert error.fields == ["body"]
    assert "32 levels" in str(error)


@pytest.mark.parametrize("form", ["text", "mapping"])
def test_a_body_nested_far_too_deep_raises_no_recursion_error(form: str) -> None:
    deep: Any = {}
    for _ in range(200_000):
        deep = {"a": deep}
    raw: object = "[" * 200_000 + "]" * 200_000 if form == "text" else deep

    assert refused(raw).fields == ["body"]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    body = with_data("refund.requested", reason='[{"quoted\\" ' + "[" * 100 + "{" * 100)

    assert parse_event(json.dumps(body)).data.reason.startswith("[{")  # type: ignore[attr-defined]


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused(constant: bytes) -> None:
    raw = json.dumps(envelope()).encode().replace(b"50000", constant, 1)

    error = refused(raw)

    assert error.fields == ["body"]
    assert "not a JSON value" in str(error)


def test_text_whose_utf8_is_past_the_size_limit_is_refused() -> None:
    # Fewer characters than the limit, more bytes: the limit is in bytes.
    text = json.dumps(with_data("refund.requested"), ensure_ascii=False)
    raw = text.replace('"reason": "', '"reason": "' + "ж" * (MAX_BODY_BYTES // 2), 1)

    assert len(raw) < MAX_BODY_BYTES
    assert refused(raw).fields == ["body"]


def test_a_body_past_the_size_limit_is_refused_before_parsing() -> None:
    raw = json.dumps(with_data("refund.requested", reason="x" * MAX_BODY_BYTES)).encode()

    assert refused(raw).fields == ["body"]


def test_every_defect_is_reported_not_only_the_first() -> None:
    body = envelope(event_id="", occurred_at="2026-03-02T10:00:00")
    body["data"]["amount_minor"] = -1

    assert sorted(refused(body).fields) == ["data.amount_minor", "event_id", "occurred_at"]


def test_a_read_event_cannot_be_changed() -> None:
    event = parse_event(envelope())

    with pytest.raises(ValueError, match="frozen"):
        event.event_id = "evt-other"


def test_text_bytes_and_mappings_all_read() -> None:
    body = envelope()

    for raw in (body, json.dumps(body), json.dumps(body).encode()):
        event = parse_event(raw)
        assert isinstance(event, Envelope)
        assert event.model_dump(mode="json") == body
