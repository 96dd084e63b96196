"""The dead letters of the `dead_letters` table: listed, shown whatever their body, retried
through the intake, purged; and the `recourse dlq` commands on them (SQLite, no broker)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from workers.cli import app
from workers.dlq import chosen_ids, get_letter, list_letters, printable, purge, retry
from workers.intake.producers import Producers
from workers.intake.service import Delivery, Intake
from workers.intake.tables import dead_letters, event_log

runner = CliRunner()
ENGINE_USER = "recourse-engine"


def envelope(event_id: str, contract_id: str = "c1", **changes: Any) -> bytes:
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": "contract.closed",
        "occurred_at": "2026-03-02T10:00:00Z",
        "schema_version": 1,
        "data": {"contract_id": contract_id},
    }
    body.update(changes)
    return json.dumps(body).encode()


def tick(event_id: str) -> bytes:
    return envelope(event_id, type="deadline.tick", data={})


@pytest.fixture
def intake(sqlite_engine: Engine) -> Intake:
    return Intake(sqlite_engine, Producers(ENGINE_USER), nudge=lambda _partitions: None)


def deliver(intake: Intake, body: bytes, routing_key: str | None, user_id: str | None) -> None:
    intake.receive([Delivery(body, routing_key, user_id)])


def letters(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (row.dead_letter_id, row.reason)
            for row in conn.execute(select(dead_letters).order_by(dead_letters.c.dead_letter_id))
        ]


def log_entries(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (row.event_id, row.producer)
            for row in conn.execute(select(event_log).order_by(event_log.c.seq))
        ]


def env(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("BROKER_URL", raising=False)
    monkeypatch.delenv("PRODUCERS_FILE", raising=False)


def test_letters_list_newest_first_in_pages_and_by_reason(
    sqlite_engine: Engine, intake: Intake
) -> None:
    for number in range(5):
        deliver(intake, b"not json %d" % number, "c1", "svc")
    deliver(intake, envelope("evt-x"), "wrong-key", "svc")

    with sqlite_engine.connect() as conn:
        first = list_letters(conn, limit=4)
        second = list_letters(conn, limit=4, before=first.next_before)
        misrouted = list_letters(conn, reason="misrouted")

    assert [letter.dead_letter_id for letter in first.letters] == [6, 5, 4, 3]
    assert first.total == 6
    assert first.letters[0].reason == "misrouted"
    assert first.letters[0].problems[0][0] == "routing_key"
    assert [letter.dead_letter_id for letter in second.letters] == [2, 1]
    assert second.next_before is None
    assert (misrouted.total, [letter.event_id for letter in misrouted.letters]) == (1, ["evt-x"])


def test_a_letter_reads_back_with_everything_the_intake_recorded(
    sqlite_engine: Engine, intake: Intake
) -> None:
    deliver(intake, tick("tick-1"), "deadline.tick", "stranger")

    with sqlite_engine.connect() as conn:
        letter = get_letter(conn, 1)
        assert get_letter(conn, 2) is None

    assert letter is not None
    shown = letter.as_json(with_body=True)
    assert shown["reason"] == "unauthorized_producer"
    assert (shown["event_id"], shown["event_type"]) == ("tick-1", "deadline.tick")
    assert (shown["routing_key"], shown["producer"]) == ("deadline.tick", "stranger")
    assert shown["body"] == tick("tick-1").decode()
    assert shown["body_intact"] is True
    assert shown["dead_at"].endswith("Z")
    assert shown["problems"] == [
        ["user_id", "broker user 'stranger' may not publish deadline.tick"]
    ]


def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert printable("caf\u00e9 ok") == "caf\u00e9 ok"
    assert printable("\x1b[2J\r\x00") == "\\x1b[2J\\x0d\\x00"
    assert printable("a\u202eb\ufffd") == "a\\u202eb\\ufffd"
    assert printable("\ud800") == "\\ud800"
    assert printable("a\nb") == "a\\x0ab"
    assert printable("a\nb", keep_newlines=True) == "a\nb"


POISON = [
    b"[" * 200_000,
    b'{"a":' * 100_000,
    b"\xff\xfe\x00\x1b]0;pwned\x07",
    b"\x1b[31m" + b"x" * (300 * 1024),
    "\u202e\U0001f4a9".encode(),
]


@pytest.mark.parametrize("body", POISON, ids=["deep-list", "deep-object", "bytes", "big", "bidi"])
def test_show_prints_any_body_safely(
    body: bytes, sqlite_engine: Engine, intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(intake, body, "k", "svc")
    env(sqlite_engine, monkeypatch)

    text = runner.invoke(app, ["dlq", "show", "1"])
    as_json = runner.invoke(app, ["dlq", "show", "1", "--json"])

    assert text.exit_code == 0, text.output
    assert "reason:      malformed" in text.output
    assert "\x1b" not in text.output and "\x00" not in text.output and "\u202e" not in text.output
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.output)
    assert shown["body_bytes"] == len(body)
    kept = body[: 256 * 1024].decode("utf-8", "replace").replace("\x00", "\ufffd")
    assert shown["body"] == kept
    assert shown["body_intact"] is (kept.encode() == body)


def test_a_retry_submits_the_body_again_as_its_producer_and_deletes_the_letter(
    sqlite_engine: Engine, intake: Intake
) -> None:
    deliver(intake, envelope("evt-1"), "not-the-key", "contracts")

    outcomes = retry(sqlite_engine, intake, [1])

    assert [(outcome.retried, outcome.detail) for outcome in outcomes] == [
        (True, "submitted again as 'contracts'")
    ]
    assert letters(sqlite_engine) == []
    assert log_entries(sqlite_engine) == [("evt-1", "contracts")]


def test_a_retried_event_goes_to_the_end_of_its_keys_order(
    sqlite_engine: Engine, intake: Intake
) -> None:
    deliver(intake, envelope("evt-1"), "wrong", "contracts")
    deliver(intake, envelope("evt-2"), "c1", "contracts")

    retry(sqlite_engine, intake, [1])

    assert [event_id for event_id, _ in log_entries(sqlite_engine)] == ["evt-2", "evt-1"]


def test_a_retry_is_judged_again_and_never_lends_the_engine_user(
    sqlite_engine: Engine, intake: Intake
) -> None:
    # A tick a stranger sent stays refused: retrying it as the engine's user would forge one.
    deliver(intake, tick("tick-1"), "deadline.tick", "stranger")

    [outcome] = retry(sqlite_engine, intake, [1])

    assert outcome.retried
    assert letters(sqlite_engine) == [(2, "unauthorized_producer")]
    assert log_entries(sqlite_engine) == []


def test_letters_that_cannot_be_submitted_as_received_are_kept(
    sqlite_engine: Engine, intake: Intake
) -> None:
    deliver(intake, envelope("evt-1"), "c1", None)
    deliver(intake, envelope("evt-2", reason="\udcff").replace(b"\\udcff", b"\xff"), "c1", "svc")

    outcomes = retry(sqlite_engine, intake, [1, 2, 3])

    assert [(outcome.dead_letter_id, outcome.retried) for outcome in outcomes] == [
        (1, False),
        (2, False),
        (3, False),
    ]
    assert "no user_id" in outcomes[0].detail
    assert "not the one received" in outcomes[1].detail
    assert outcomes[2].detail == "no such dead letter"
    assert letters(sqlite_engine) == [(1, "unauthorized_producer"), (2, "malformed")]


def test_letters_are_chosen_by_id_by_reason_or_all_and_purged(
    sqlite_engine: Engine, intake: Intake
) -> None:
    deliver(intake, b"{", "k", "svc")
    deliver(intake, envelope("evt-1"), "wrong", "svc")
    deliver(intake, b"[]", "k", "svc")

    with sqlite_engine.begin() as conn:
        assert chosen_ids(conn) == []
        assert chosen_ids(conn, every=True) == [1, 2, 3]
        assert chosen_ids(conn, reason="malformed") == [1, 3]
        assert chosen_ids(conn, ids=[3, 9]) == [3]
        assert purge(conn, chosen_ids(conn, reason="malformed")) == 2
        assert purge(conn, []) == 0
        remaining = conn.execute(select(func.count()).select_from(dead_letters)).scalar_one()
    assert remaining == 1


def test_dlq_list_and_show_commands(
    sqlite_engine: Engine, intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(intake, envelope("evt-1", data={"contract_id": "c1", "x": 1}), "c1", "svc")
    deliver(intake, envelope("evt-2"), "wrong", "svc")
    env(sqlite_engine, monkeypatch)

    listed = runner.invoke(app, ["dlq", "list", "--limit", "1"])
    as_json = runner.invoke(app, ["dlq", "list", "--reason", "malformed", "--json"])
    shown = runner.invoke(app, ["dlq", "show", "2"])

    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].startswith("2  ") and "misrouted  contract.closed  evt-2" in lines[0]
    assert lines[1] == "1 of 2 dead letters; older ones: recourse dlq list --before 2"
    page = json.loads(as_json.output)
    [malformed] = page["dead_letters"]
    # A malformed body has no envelope, so no event id of its own; the list has no body.
    assert (malformed["dead_letter_id"], malformed["event_id"]) == (1, None)
    assert malformed["problems"][0][0] == "data.x"
    assert "body" not in malformed
    assert (page["total"], page["next_before"]) == (1, None)
    assert "routing key: wrong" in shown.output
    assert shown.output.rstrip().endswith(envelope("evt-2").decode())


def test_dlq_retry_command(
    sqlite_engine: Engine, intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(intake, envelope("evt-1"), "wrong", "svc")
    deliver(intake, envelope("evt-2"), "c1", None)
    env(sqlite_engine, monkeypatch)

    result = runner.invoke(app, ["dlq", "retry", "--all", "--json"])

    assert result.exit_code == 1
    report = json.loads(result.output)
    assert (report["retried"], report["kept"]) == (1, 1)
    assert [letter["retried"] for letter in report["letters"]] == [True, False]
    assert log_entries(sqlite_engine) == [("evt-1", "svc")]


def test_dlq_purge_command(
    sqlite_engine: Engine, intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(3):
        deliver(intake, envelope(f"evt-{number}"), "wrong", "svc")
    env(sqlite_engine, monkeypatch)

    unconfirmed = runner.invoke(app, ["dlq", "purge", "1"])
    by_id = runner.invoke(app, ["dlq", "purge", "1", "7", "--yes", "--json"])
    everything = runner.invoke(app, ["dlq", "purge", "--all", "--yes"])

    assert unconfirmed.exit_code == 2
    assert "error: purge deletes dead letters for good; pass --yes" in unconfirmed.output
    assert by_id.exit_code == 1
    assert json.loads(by_id.output) == {"purged": 1, "missing": [7]}
    assert everything.exit_code == 0
    assert "2 dead letters purged" in everything.output
    assert letters(sqlite_engine) == []


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["dlq", "show", "5"], 1, "error: no dead letter '5'"),
        (["dlq", "list", "--reason", "bored"], 2, "error: no dead-letter reason 'bored'"),
        (["dlq", "retry"], 2, "error: name the dead letters one way"),
        (["dlq", "retry", "1", "--all"], 2, "error: name the dead letters one way"),
        (["dlq", "purge", "--reason", "bored", "--yes"], 2, "no dead-letter reason"),
    ],
)
def test_dlq_mistakes_are_one_line_errors(
    args: list[str],
    code: int,
    says: str,
    sqlite_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env(sqlite_engine, monkeypatch)

    result = runner.invoke(app, args)

    assert result.exit_code == code
    assert says in result.output


def test_the_dlq_commands_need_no_broker_but_a_database(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'missing.sqlite'}")
    monkeypatch.delenv("BROKER_URL", raising=False)

    result = runner.invoke(app, ["dlq", "list"])

    assert result.exit_code == 1
    assert "error: no database file" in result.output
