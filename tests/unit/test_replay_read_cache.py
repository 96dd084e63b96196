"""The replay's read cache (`ledger.read_cache`): what it answers is what the database holds.

It is written through by every state-row and account write, forgotten on a rollback to a
savepoint, and never enabled outside the replay; a replay with it gives the very report a
replay without it gives.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine

from bench import workload
from ledger import Book, read_cache
from ledger.registry import find_accounts
from ledger.savepoints import savepoint
from policy import rows
from policy.config import load_policies
from policy.state import ContractState
from policy.tables import contracts
from tests.e2e.story_generator import generate_load
from workers import replay
from workers.database import make_engine, migrate
from workers.replay import replay_lines

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def contract(contract_id: str, *, paid_minor: int = 0) -> ContractState:
    return ContractState(
        contract_id=contract_id,
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
        client_jurisdiction=None,
        opened_at=AT,
        closed_at=None,
        paid_total_minor=paid_minor,
        refunded_total_minor=0,
        reviews_hidden=False,
    )


@pytest.fixture
def cached(sqlite_engine: Engine) -> Iterator[Connection]:
    with sqlite_engine.connect() as conn, read_cache.single_writer(conn), conn.begin():
        yield conn


def test_a_row_written_through_is_what_the_database_then_holds(cached: Connection) -> None:
    assert rows.load(cached, contracts, ContractState, "c1") is None
    rows.insert_row(cached, contracts, contract("c1"))
    assert rows.load(cached, contracts, ContractState, "c1") == contract("c1")
    rows.save_row(cached, contracts, contract("c1", paid_minor=500))
    loaded = rows.load(cached, contracts, ContractState, "c1")
    read_cache.forget(cached)
    from_database = rows.load(cached, contracts, ContractState, "c1")
    assert loaded == from_database == contract("c1", paid_minor=500)


def test_a_rollback_to_a_savepoint_forgets_what_the_block_cached(cached: Connection) -> None:
    rows.insert_row(cached, contracts, contract("c1"))
    with contextlib.suppress(LookupError), savepoint(cached, "test"):
        rows.save_row(cached, contracts, contract("c1", paid_minor=500))
        rows.insert_row(cached, contracts, contract("c2"))
        raise LookupError("undo the block")
    # Without the forgetting, the cache would still answer the undone writes.
    assert rows.load(cached, contracts, ContractState, "c1") == contract("c1")
    assert rows.load(cached, contracts, ContractState, "c2") is None


def test_a_rollback_of_sqlalchemys_own_savepoint_or_transaction_forgets_too(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.connect() as conn, read_cache.single_writer(conn):
        with conn.begin():
            nested = conn.begin_nested()
            rows.insert_row(conn, contracts, contract("c1"))
            find_accounts(conn, [])  # the namespaces exist
            nested.rollback()
            assert rows.load(conn, contracts, ContractState, "c1") is None
        transaction = conn.begin()
        rows.insert_row(conn, contracts, contract("c2"))
        transaction.rollback()
        with conn.begin():
            assert rows.load(conn, contracts, ContractState, "c2") is None


def test_freezing_an_account_is_seen_through_the_cache(cached: Connection) -> None:
    book = Book(cached)
    book.freeze("user:u1", "USD")
    assert book.is_frozen("user:u1", "USD")
    book.unfreeze("user:u1", "USD")
    assert not book.is_frozen("user:u1", "USD")
    (account,) = find_accounts(cached, [("user:u1", "USD")]).values()
    assert not account.frozen


def test_a_replay_into_a_database_it_does_not_own_caches_nothing(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    promised: list[Connection] = []
    real = replay.read_cache.single_writer
    monkeypatch.setattr(
        replay.read_cache, "single_writer", lambda conn: promised.append(conn) or real(conn)
    )
    replay_lines(sqlite_engine, list(workload.lines(30)), load_policies())
    assert promised == []
    replay_lines(
        sqlite_engine, list(workload.lines(30, prefix="o")), load_policies(), own_database=True
    )
    assert len(promised) == 1


def test_without_single_writer_nothing_is_cached(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert read_cache.namespace(conn, rows.ROWS_CACHE) is None
        with read_cache.single_writer(conn):
            assert read_cache.namespace(conn, rows.ROWS_CACHE) == {}
        assert read_cache.namespace(conn, rows.ROWS_CACHE) is None


def _replayed(folder: Path, name: str, lines: list[str], *, own: bool) -> dict[str, object]:
    engine = make_engine(f"sqlite:///{folder / name}")
    migrate(engine)
    try:
        return replay_lines(engine, lines, load_policies(), own_database=own).as_json()
    finally:
        engine.dispose()


def test_a_replay_of_its_own_database_reports_what_a_careful_one_does(tmp_path: Path) -> None:
    # Its own database: reads cached, no savepoint an event. Not its own: neither.
    # The bench's mix, and the fault runs' stories (withdrawals, points, chargebacks, add-ons),
    # whose withdrawal handler rolls back a savepoint of SQLAlchemy's own.
    lines = list(workload.lines(1_500)) + list(generate_load(200, 20, seed=4).causal_lines())
    envelopes = [json.loads(line) for line in lines]
    # Rejections roll back to the event's savepoint: funding of an unknown contract, work
    # started on an unknown milestone; and a duplicate.
    orphan = next(e for e in envelopes if e["type"] == "milestone.funded")
    orphan = {**orphan, "event_id": "orphan-1", "data": {**orphan["data"], "contract_id": "nope"}}
    stray = next(e for e in envelopes if e["type"] == "work.started")
    stray = {**stray, "event_id": "stray-1", "data": {**stray["data"], "milestone_id": "nope"}}
    lines[200:200] = [json.dumps(orphan), json.dumps(stray), lines[5]]

    with_cache = _replayed(tmp_path, "cached.sqlite", lines, own=True)
    without_cache = _replayed(tmp_path, "plain.sqlite", lines, own=False)

    assert with_cache == without_cache
    rejected = with_cache["rejections"]
    assert isinstance(rejected, list)
    assert {r["event_id"] for r in rejected if r["reason"] == "unknown_subject"} >= {
        "orphan-1",
        "stray-1",
    }


def test_an_unknown_subject_mid_batch_is_rejected_as_if_each_event_committed_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch applies events without a savepoint each and, at an unknown subject, rolls back
    # and applies its earlier events again: a batch of one event never has any to redo.
    lines = list(generate_load(200, 20, seed=4).causal_lines())
    envelopes = [json.loads(line) for line in lines]
    funded = [e for e in envelopes if e["type"] == "milestone.funded"]
    for number, envelope in enumerate(funded[:5]):
        orphan = {**envelope, "event_id": f"orphan-{number}"}
        orphan["data"] = {**envelope["data"], "contract_id": f"nope-{number}"}
        lines.insert(50 + 97 * number, json.dumps(orphan))

    batched = _replayed(tmp_path, "batched.sqlite", lines, own=True)
    monkeypatch.setattr(replay, "COMMIT_EVERY", 1)
    alone = _replayed(tmp_path, "alone.sqlite", lines, own=True)

    assert batched == alone
    rejected = batched["rejections"]
    assert isinstance(rejected, list)
    assert {r["event_id"] for r in rejected} >= {f"orphan-{number}" for number in range(5)}
