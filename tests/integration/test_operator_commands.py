"""The operator commands against a store filled by replaying a small story, through the CLI.

The story (spectrum preset, USD): contract c1 between client ana and creator ben; m1 (500.00)
and m2 (300.00) funded; work starts on m2; m1 released (and released again: rejected, and
delivered twice: a duplicate); ana's refund request on m2 opens dispute r1 (SC-3), resolved as
a partial refund of 100.00; ana opens dispute d2 on m1, which a tick finds overdue (SC-14);
the contract closes, which opens the review-window and finalization deadlines; ben asks to
withdraw 200.00, which is held at once (CC-5).

Money, by hand (client fee 4%, creator fee 8%, docs/money-flows.md):
  m1 funded: escrow:m1 +500.00, fees +20.00; processor fee 14.80 borne by the platform
  m2 funded: escrow:m2 +300.00, fees +12.00; processor fee 9.00
  m1 released: ben +460.00, fees +40.00 (creator fee)
  r1 partial refund 100.00 of m2: ana +100.00 from escrow, +4.00 client fee reversed
      (round_half_even(1200 * 100/300)); the rest released: ben +184.00 (200.00 less the
      creator fee still due, 24.00 - 8.00 reversed = 16.00), fees +16.00
  ana 104.00, ben 644.00, fees 20 + 12 + 40 - 4 + 16 = 84.00, processor fees 23.80
  w1: 200.00 of ben's 644.00 on hold, 444.00 available
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from policy.config import load_policies
from workers.cli import app
from workers.replay import replay_lines

WIDE = {"COLUMNS": "200"}
"""Rich wraps cells to the terminal; a wide one keeps each table row on one line."""


def _event(event_id: str, type_: str, at: str, **data: Any) -> str:
    return json.dumps(
        {"event_id": event_id, "type": type_, "occurred_at": at, "schema_version": 1, "data": data}
    )


RELEASE_M1 = _event(
    "e5", "milestone.released", "2026-03-04T16:00:00Z",
    contract_id="c1", milestone_id="m1", released_by="client",
)  # fmt: skip

STORY = [
    _event(
        "e1", "contract.opened", "2026-03-02T09:00:00Z", contract_id="c1", kind="fixed",
        client_id="ana", creator_id="ben", currency="USD", policy="spectrum",
    ),
    _event(
        "e2", "milestone.funded", "2026-03-02T10:00:00Z", contract_id="c1", milestone_id="m1",
        payment_id="p1", amount_minor=50000, processor_fee_minor=1480,
    ),
    _event(
        "e3", "milestone.funded", "2026-03-02T10:05:00Z", contract_id="c1", milestone_id="m2",
        payment_id="p2", amount_minor=30000, processor_fee_minor=900,
    ),
    _event(
        "e4", "work.started", "2026-03-03T08:00:00Z", contract_id="c1", milestone_id="m2",
        evidence="upload",
    ),
    RELEASE_M1,
    RELEASE_M1,
    _event(
        "e6", "milestone.released", "2026-03-04T16:30:00Z", contract_id="c1", milestone_id="m1",
        released_by="client",
    ),
    _event(
        "e7", "refund.requested", "2026-03-05T11:00:00Z", request_id="r1", contract_id="c1",
        target_id="m2", amount_minor=30000, reason="the drawings miss the agreed views",
    ),
    _event(
        "e8", "dispute.resolved", "2026-03-06T15:00:00Z", dispute_id="r1", contract_id="c1",
        outcome="partial_refund", refund_amount_minor=10000, decided_by="mia",
    ),
    _event(
        "e9", "dispute.opened", "2026-03-07T09:00:00Z", dispute_id="d2", contract_id="c1",
        target_id="m1", reason="the logo colours are wrong",
    ),
    _event("e10", "deadline.tick", "2026-03-13T00:00:00Z"),
    _event("e11", "contract.closed", "2026-03-14T10:00:00Z", contract_id="c1"),
    _event(
        "e12", "withdrawal.requested", "2026-03-16T08:00:00Z", withdrawal_id="w1", user_id="ben",
        amount_minor=20000, currency="USD",
    ),
]  # fmt: skip


@pytest.fixture
def db(sqlite_engine: Engine) -> str:
    """The URL of a migrated SQLite store holding the story."""
    report = replay_lines(sqlite_engine, STORY, load_policies())
    assert report.rejections == [{"event_id": "e6", "reason": "invalid_state"}]
    assert report.duplicates == 1
    return sqlite_engine.url.render_as_string(hide_password=False)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=WIDE)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows_of(output: str) -> list[list[str]]:
    """The cells of every table row in rich's output, stripped."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


# recourse contract


def test_contract_json_tells_every_event_with_what_it_caused(db: str) -> None:
    timeline = run_json("contract", "c1", "--db", db)
    story = [
        (line["id"], line["type"], line["result"], line["reason"], line["notifications"],
         line["transfers"])
        for line in timeline["story"]
    ]  # fmt: skip
    assert story == [
        ("e1", "contract.opened", "applied", None, 0, 0),
        ("e2", "milestone.funded", "applied", None, 0, 3),
        ("e3", "milestone.funded", "applied", None, 0, 3),
        ("e4", "work.started", "applied", None, 0, 0),
        ("e5", "milestone.released", "applied", None, 0, 2),
        ("e6", "milestone.released", "rejected", "invalid_state", 1, 0),
        ("e7", "refund.requested", "applied", None, 1, 0),
        ("e8", "dispute.resolved", "applied", None, 2, 4),
        ("dispute.overdue:r1", "dispute.overdue", "cancelled", None, 0, 0),
        ("e9", "dispute.opened", "applied", None, 1, 0),
        ("dispute.overdue:d2", "dispute.overdue", "fired", None, 1, 0),
        ("e11", "contract.closed", "applied", None, 0, 0),
    ]
    assert {line["id"]: line["decided_by"] for line in timeline["story"] if line["decided_by"]} == {
        "e8": "mia"
    }
    fired = timeline["story"][10]
    assert (fired["source"], fired["at"], fired["fired_by"]) == (
        "deadline",
        "2026-03-12T09:00:00Z",
        "e10",
    )


def test_contract_json_gives_the_state_of_targets_requests_and_disputes(db: str) -> None:
    timeline = run_json("contract", "c1", "--db", db)
    contract = timeline["contract"]
    assert (contract["paid_total_minor"], contract["refunded_total_minor"]) == (80000, 10000)
    assert contract["net_value_minor"] == 70000
    assert contract["closed_at"] == "2026-03-14T10:00:00Z"
    m2 = next(target for target in timeline["targets"] if target["target_id"] == "m2")
    assert (m2["refunded_minor"], m2["released_minor"], m2["held_in_escrow_minor"]) == (
        10000,
        20000,
        0,
    )
    assert m2["refundable_minor"] == 20000
    assert m2["work_started_at"] == "2026-03-03T08:00:00Z"
    requests = [
        (r["request_id"], r["target_id"], r["amount_minor"]) for r in timeline["refund_requests"]
    ]
    assert requests == [("r1", "m2", 30000)]
    disputes = [
        (d["dispute_id"], d["status"], d["outcome"], d["refund_minor"])
        for d in timeline["disputes"]
    ]
    assert disputes == [("r1", "resolved", "partial_refund", 10000), ("d2", "open", None, 0)]


def test_contract_json_lists_open_deadlines_with_their_due_time(db: str) -> None:
    timeline = run_json("contract", "c1", "--db", db)
    deadlines = [
        (d["deadline_id"], d["due_at"], d["created_by_event"]) for d in timeline["open_deadlines"]
    ]
    assert deadlines == [
        ("review_window.close:c1", "2026-03-28T10:00:00Z", "e11"),
        ("milestone.finalize:m1", "2026-04-03T16:00:00Z", "e11"),
        ("milestone.finalize:m2", "2026-04-05T15:00:00Z", "e11"),
    ]


def test_contract_json_lists_every_ledger_entry_the_contract_caused(db: str) -> None:
    transfers = run_json("contract", "c1", "--db", db)["transfers"]
    moved = [(t["cause"], t["code"], t["debit"], t["credit"], t["amount_minor"]) for t in transfers]
    assert moved == [
        ("e2", "funding", "external:card", "escrow:m1", 50000),
        ("e2", "client_fee", "external:card", "platform:fees", 2000),
        ("e2", "processor_fee", "platform:processor_fees", "external:processor", 1480),
        ("e3", "funding", "external:card", "escrow:m2", 30000),
        ("e3", "client_fee", "external:card", "platform:fees", 1200),
        ("e3", "processor_fee", "platform:processor_fees", "external:processor", 900),
        ("e5", "release", "escrow:m1", "user:ben", 46000),
        ("e5", "creator_fee", "escrow:m1", "platform:fees", 4000),
        ("e8", "refund", "escrow:m2", "user:ana", 10000),
        ("e8", "client_fee_reversal", "platform:fees", "user:ana", 400),
        ("e8", "release", "escrow:m2", "user:ben", 18400),
        ("e8", "creator_fee", "escrow:m2", "platform:fees", 1600),
    ]
    assert {t["event_type"] for t in transfers if t["cause"] == "e8"} == {"dispute.resolved"}


def test_contract_table_shows_the_story_state_deadlines_and_entries(db: str) -> None:
    result = run("contract", "c1", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "Contract c1 (fixed, policy spectrum, USD): client ana, creator ben; opened "
        "2026-03-02T09:00:00Z, closed 2026-03-14T10:00:00Z; paid 800.00 USD, refunded 100.00 USD"
    )
    rows = rows_of(result.stdout)
    rejected = ["2026-03-04T16:30:00Z", "e6", "milestone.released", "rejected (invalid_state)"]
    assert [*rejected, "1", "0"] in rows
    fired = ["2026-03-12T09:00:00Z", "deadline dispute.overdue:d2", "dispute.overdue", "fired"]
    decided = ["2026-03-06T15:00:00Z", "e8", "dispute.resolved", "applied, decided by mia"]
    assert [*decided, "2", "4"] in rows
    assert [*fired, "1", "0"] in rows
    amounts = ["300.00 USD", "0.00 USD", "200.00 USD", "100.00 USD", "200.00 USD"]
    assert ["m2", "milestone", "released", *amounts, "2026-03-02T10:05:00Z", "work started"] in rows
    assert ["d2", "m1", "open", "2026-03-07T09:00:00Z", "-", "0.00 USD", "0.00 USD", "-"] in rows
    assert ["2026-04-03T16:00:00Z", "milestone.finalize:m1", "e11"] in rows
    assert ["2026-03-06T15:00:00Z", "e8#4", "client_fee_reversal", "platform:fees", "user:ana",
            "4.00 USD", "e8"] in rows  # fmt: skip


def test_a_contract_known_only_from_refused_events_still_tells_them(
    db: str, sqlite_engine: Engine
) -> None:
    orphan = _event(
        "e90", "milestone.funded", "2026-03-20T10:00:00Z", contract_id="c404",
        milestone_id="m404", payment_id="p404", amount_minor=1000, processor_fee_minor=0,
    )  # fmt: skip
    replay_lines(sqlite_engine, [orphan], load_policies())
    timeline = run_json("contract", "c404", "--db", db)
    assert timeline["contract"] is None
    assert [(line["id"], line["result"], line["reason"]) for line in timeline["story"]] == [
        ("e90", "rejected", "unknown_subject")
    ]
    result = run("contract", "c404", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "Contract c404: never opened (every event naming it was refused)\n"
    )


def test_an_unknown_contract_is_one_line_and_exit_code_1(db: str) -> None:
    result = run("contract", "c9", "--db", db)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: no contract 'c9' in {db}; check the contract id, or point --db at the "
        "database that holds it"
    ]


# recourse balance


def test_balance_json_is_from_the_owners_side_with_the_withdrawal_on_hold(db: str) -> None:
    assert run_json("balance", "user:ben", "--db", db) == {
        "account": "user:ben",
        "cost_account": False,
        "balances": {
            "USD": {
                "available_minor": 44400,
                "posted_minor": 64400,
                "held_minor": 20000,
                "incoming_minor": 0,
                "frozen": False,
                "entries": 3,
            }
        },
    }


def test_a_cost_account_balance_is_what_the_platform_bears(db: str) -> None:
    balance = run_json("balance", "platform:processor_fees", "--db", db)
    assert balance["cost_account"] is True
    assert balance["balances"]["USD"]["available_minor"] == 2380


def test_balance_table(db: str) -> None:
    result = run("balance", "platform:fees", "--currency", "USD", "--db", db)
    assert result.exit_code == 0, result.output
    assert rows_of(result.stdout) == [
        ["USD", "84.00 USD", "84.00 USD", "0.00 USD", "0.00 USD", "no", "5"]
    ]


def test_an_unknown_account_is_exit_code_1_and_a_bad_name_exit_code_2(db: str) -> None:
    unknown = run("balance", "user:zoe", "--db", db)
    assert unknown.exit_code == 1
    assert unknown.stderr == (
        f"error: no account 'user:zoe' in {db}; an account is user:<id>, escrow:<milestone_id>, "
        "points:<id>, platform:<name> or external:<name>; `recourse contract ID` lists the ones "
        "a contract used\n"
    )
    assert len(unknown.stderr.splitlines()) == 1
    bad = run("balance", "zoe", "--db", db)
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: account name 'zoe' is not <kind>:<id>")


def test_a_currency_the_account_does_not_hold_is_named(db: str) -> None:
    result = run("balance", "user:ben", "--currency", "EUR", "--db", db)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: account 'user:ben' holds no EUR in {db}; it holds USD: pass one of those to "
        "--currency\n"
    )


# recourse statement


def test_statement_json_gives_each_entry_its_cause_and_running_balance(db: str) -> None:
    statement = run_json("statement", "user:ana", "--db", db)
    (usd,) = statement["statements"]
    lines = [
        (line["code"], line["counterparty"], line["change_minor"], line["balance_minor"],
         line["event_id"], line["event_type"])
        for line in usd["lines"]
    ]  # fmt: skip
    assert lines == [
        ("refund", "escrow:m2", 10000, 10000, "e8", "dispute.resolved"),
        ("client_fee_reversal", "platform:fees", 400, 10400, "e8", "dispute.resolved"),
    ]
    assert (usd["opening_minor"], usd["closing_minor"]) == (0, 10400)


def test_statement_window_starts_from_the_opening_balance(db: str) -> None:
    statement = run_json(
        "statement", "platform:fees", "--since", "2026-03-04", "--until", "2026-03-06T15:00:00Z",
        "--db", db,
    )  # fmt: skip
    (usd,) = statement["statements"]
    assert (usd["since"], usd["until"]) == ("2026-03-04T00:00:00Z", "2026-03-06T15:00:00Z")
    assert usd["opening_minor"] == 3200  # the two client fees of the fundings
    assert [(line["code"], line["change_minor"]) for line in usd["lines"]] == [
        ("creator_fee", 4000)
    ]
    assert usd["closing_minor"] == 7200


def test_statement_table_adds_up_from_opening_to_closing(db: str) -> None:
    result = run("statement", "platform:fees", "--db", db)
    assert result.exit_code == 0, result.output
    rows = rows_of(result.stdout)
    assert rows[0] == ["", "opening balance", "", "", "0.00 USD", "", ""]
    assert rows[4] == [
        "2026-03-06T15:00:00Z", "client_fee_reversal", "user:ana", "-4.00 USD", "68.00 USD",
        "e8", "dispute.resolved",
    ]  # fmt: skip
    assert rows[-1] == ["", "closing balance", "", "", "84.00 USD", "", ""]


def test_cc5_statement_takes_a_withdrawal_out_of_reach_when_it_is_held(db: str) -> None:
    """CC-5: the withdrawn amount leaves the available balance when it is requested."""
    (usd,) = run_json("statement", "user:ben", "--db", db)["statements"]
    held = usd["lines"][-1]
    assert (held["code"], held["kind"], held["counterparty"]) == (
        "withdrawal",
        "pending",
        "external:bank",
    )
    assert (held["change_minor"], held["posted_change_minor"]) == (-20000, 0)
    assert held["balance_minor"] == usd["closing_minor"] == 44400
    assert (held["event_id"], held["event_type"]) == ("e12", "withdrawal.requested")
    result = run("statement", "user:ben", "--db", db)
    assert result.exit_code == 0, result.output
    assert rows_of(result.stdout)[3] == [
        "2026-03-16T08:00:00Z", "withdrawal (pending)", "external:bank", "-200.00 USD",
        "444.00 USD", "e12", "withdrawal.requested",
    ]  # fmt: skip


def test_a_cost_account_statement_counts_what_the_platform_bears(db: str) -> None:
    (usd,) = run_json("statement", "platform:processor_fees", "--db", db)["statements"]
    assert [line["balance_minor"] for line in usd["lines"]] == [1480, 2380]


def test_a_time_that_is_not_iso_is_a_usage_error(db: str) -> None:
    result = run("statement", "user:ana", "--since", "last week", "--db", db)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --since: 'last week' is not an ISO 8601 date or time; write it as 2026-03-02 "
        "or 2026-03-02T10:00:00Z\n"
    )


# recourse disputes


def test_disputes_json_is_the_queue_oldest_first_with_age_and_stake(db: str) -> None:
    queue = run_json("disputes", "--now", "2026-03-13T12:00:00Z", "--db", db)
    assert queue["now"] == "2026-03-13T12:00:00Z"
    assert [
        (d["dispute_id"], d["status"], d["age_seconds"], d["at_stake_minor"], d["overdue"])
        for d in queue["disputes"]
    ] == [
        ("r1", "resolved", (24 + 4) * 3600, 20000, False),
        ("d2", "open", (6 * 24 + 3) * 3600, 50000, True),
    ]
    d2 = queue["disputes"][1]
    assert (d2["sla_days"], d2["due_at"]) == (5, "2026-03-12T09:00:00Z")


def test_sc14_disputes_overdue_from_the_sla_instant_on(db: str) -> None:
    """SC-14: overdue once open for dispute_sla_days (5), the instant the engine says so."""
    before = run_json("disputes", "--overdue", "--now", "2026-03-12T08:59:59Z", "--db", db)
    at = run_json("disputes", "--overdue", "--now", "2026-03-12T09:00:00Z", "--db", db)
    assert before["disputes"] == []
    assert [d["dispute_id"] for d in at["disputes"]] == ["d2"]


def test_disputes_table_of_open_ones(db: str) -> None:
    result = run("disputes", "--open", "--now", "2026-03-13T12:00:00Z", "--db", db)
    assert result.exit_code == 0, result.output
    assert rows_of(result.stdout) == [
        ["d2", "c1", "m1", "open", "2026-03-07T09:00:00Z", "6d 3h", "2026-03-12T09:00:00Z",
         "500.00 USD", "OVERDUE"]
    ]  # fmt: skip


def test_no_dispute_matching_says_so(db: str) -> None:
    result = run("disputes", "--overdue", "--now", "2026-03-08T00:00:00Z", "--db", db)
    assert result.exit_code == 0
    assert result.stdout == "No disputes match as of 2026-03-08T00:00:00Z.\n"


# errors of every command


@pytest.mark.parametrize(
    "command",
    [
        ["contract", "c1"],
        ["balance", "user:ana"],
        ["statement", "user:ana"],
        ["disputes"],
        ["audit"],
        ["migrate"],
    ],
)
def test_a_bad_database_url_is_one_line_and_exit_code_2(command: list[str]) -> None:
    result = run(*command, "--db", "not a url")
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: bad database URL")
    assert line.endswith(
        "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB in --db or DATABASE_URL"
    )


@pytest.mark.parametrize("command", [["contract", "c1"], ["balance", "user:ana"], ["disputes"]])
def test_a_database_that_is_down_is_one_line_and_exit_code_1(command: list[str]) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/recourse"
    result = run(*command, "--db", url)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach the database at {url} (connection failed:")
    assert line.endswith("; check that it is running and that --db or DATABASE_URL point at it")


def test_a_missing_database_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite"
    result = run("contract", "c1", "--db", f"sqlite:///{missing}")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: no database file '{missing}'; check the path")
    assert not missing.exists()


def test_a_database_without_the_schema_asks_for_a_migration(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    result = run("statement", "user:ana", "--db", f"sqlite:///{empty}")
    assert result.exit_code == 1
    assert "has no Recourse schema (missing inbox, ledger_transfers, deadlines)" in result.stderr
    assert "run `recourse migrate --db URL`" in result.stderr


def test_an_existing_command_failing_inside_gets_one_line_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-dir' / 'x.sqlite'}"
    result = run("audit", "--db", url)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the SQLite file of --db ({url}) does not exist; check the path, or run "
        "`recourse migrate` to create the database\n"
    )


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    # A process of its own: the traceback is Python's, printed as the exception leaves main.
    missing = f"sqlite:///{tmp_path / 'typo.sqlite'}"
    quiet = run("contract", "c1", "--db", missing)
    debug_args = ["--debug", "contract", "c1", "--db", missing]
    loud = subprocess.run(
        [sys.executable, "-c", "from workers.cli import app; app()", *debug_args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert quiet.exit_code == loud.returncode == 1
    assert len(quiet.stderr.splitlines()) == 1
    assert "Traceback" not in quiet.output
    assert loud.stderr.startswith("Traceback (most recent call last):")
    assert "workers.operator.errors.OperatorError: no database file" in loud.stderr


@pytest.mark.postgres
def test_the_views_read_postgresql_in_one_read_only_snapshot(pg_engine: Engine) -> None:
    replay_lines(pg_engine, STORY, load_policies())
    url = pg_engine.url.render_as_string(hide_password=False)
    timeline = run_json("contract", "c1", "--db", url)
    assert [line["id"] for line in timeline["story"]][-3:] == ["e9", "dispute.overdue:d2", "e11"]
    assert len(timeline["transfers"]) == 12
    (usd,) = run_json("statement", "user:ben", "--db", url)["statements"]
    assert usd["closing_minor"] == 44400
    queue = run_json("disputes", "--open", "--now", "2026-03-13T12:00:00Z", "--db", url)
    assert [d["dispute_id"] for d in queue["disputes"]] == ["d2"]
