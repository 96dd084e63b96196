"""`store.pipelining` on the real PostgreSQL: writes queued inside `deferred_writes` run in
order, their failures still undo what they must (the transaction, or a savepoint's block), and
statements through `Connection.execute` still read what they should."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from store.pipelining import deferred_writes, open_pipeline
from store.prepared import Prepared
from store.savepoints import savepoint

pytestmark = pytest.mark.postgres

probe_metadata = MetaData()
probes = Table(
    "pipelined_probes",
    probe_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("note", String(40), nullable=False),
)

INSERT = Prepared(insert(probes))
RENAME = Prepared(
    update(probes).where(probes.c.id == bindparam("row_id")).values(note=bindparam("new_note"))
)
NOTES = Prepared(select(probes.c.note).order_by(probes.c.id))


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    from workers.database import make_engine

    engine = make_engine(pg_url)
    probe_metadata.create_all(engine)
    yield engine
    engine.dispose()


def notes(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(probes.c.note).order_by(probes.c.id)))


def test_queued_writes_run_in_order_and_a_read_sees_them(engine: Engine) -> None:
    with engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 1, "note": "first"})
        RENAME.write(conn, {"row_id": 1, "new_note": "renamed"})
        INSERT.run_many(conn, [{"id": 2, "note": "second"}, {"id": 3, "note": "third"}])
        assert open_pipeline(conn) is not None
        assert [row[0] for row in NOTES.rows(conn, {})] == ["renamed", "second", "third"]
        INSERT.write(conn, {"id": 4, "note": "last"})

    assert notes(engine) == ["renamed", "second", "third", "last"]


def test_a_queued_write_that_fails_raises_at_the_end_and_nothing_commits(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.write(conn, {"id": 1, "note": "committed before"})

    written: list[bool] = []
    with pytest.raises(IntegrityError), engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 2, "note": "rolled back"})
        # The duplicate key is not reported here, where it was written...
        INSERT.write(conn, {"id": 1, "note": "duplicate"})
        written.append(True)
        # ...but when the queued writes are answered, on leaving the block.

    assert written == [True]
    assert notes(engine) == ["committed before"]
    # The pooled connection left pipeline mode and serves the next transaction as usual.
    with engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 3, "note": "after"})
    assert notes(engine) == ["committed before", "after"]


def test_a_queued_failure_is_raised_by_the_next_read(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.write(conn, {"id": 1, "note": "there"})

    written: list[bool] = []
    with pytest.raises(IntegrityError), engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 1, "note": "duplicate"})
        written.append(True)
        NOTES.rows(conn, {})
        pytest.fail("the read should have raised the queued write's failure")


def test_outside_deferred_writes_a_write_runs_and_fails_at_once(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.write(conn, {"id": 1, "note": "there"})
        assert open_pipeline(conn) is None
        with pytest.raises(IntegrityError), savepoint(conn, "probe"):
            INSERT.write(conn, {"id": 1, "note": "duplicate"})
            pytest.fail("the duplicate should have raised where it was written")
        INSERT.write(conn, {"id": 2, "note": "goes on"})

    assert notes(engine) == ["there", "goes on"]


def test_a_statement_through_execute_reads_the_queued_writes(engine: Engine) -> None:
    with engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 1, "note": "queued"})
        counted = conn.scalar(select(func.count()).select_from(probes))
        assert counted == 1
        assert open_pipeline(conn) is None
        # A later write opens the pipeline again.
        INSERT.write(conn, {"id": 2, "note": "queued again"})
        assert open_pipeline(conn) is not None

    assert notes(engine) == ["queued", "queued again"]


def test_a_failure_inside_a_savepoint_rolls_back_to_it_and_the_transaction_goes_on(
    engine: Engine,
) -> None:
    with engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 1, "note": "kept"})
        with pytest.raises(IntegrityError), savepoint(conn, "probe"):
            INSERT.write(conn, {"id": 2, "note": "undone"})
            INSERT.write(conn, {"id": 1, "note": "duplicate"})
        INSERT.write(conn, {"id": 3, "note": "after"})

    assert notes(engine) == ["kept", "after"]


def test_a_failure_inside_a_savepoint_is_raised_before_the_savepoint_is_released(
    engine: Engine,
) -> None:
    """The block's queued writes answer before RELEASE: a failure among them is the block's."""
    with engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 1, "note": "kept"})
        with pytest.raises(IntegrityError), savepoint(conn, "probe"):
            INSERT.write(conn, {"id": 1, "note": "duplicate"})
            assert open_pipeline(conn) is not None
        assert [row[0] for row in NOTES.rows(conn, {})] == ["kept"]


def test_a_failure_queued_before_a_savepoint_is_not_the_savepoints_to_undo(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        INSERT.write(conn, {"id": 1, "note": "there"})
    entered: list[bool] = []

    with pytest.raises(IntegrityError), engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 1, "note": "duplicate"})
        with savepoint(conn, "probe"):
            entered.append(True)

    assert entered == []
    assert notes(engine) == ["there"]


def test_sqlalchemy_savepoints_inside_deferred_writes(engine: Engine) -> None:
    with engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 1, "note": "kept"})
        nested = conn.begin_nested()
        INSERT.write(conn, {"id": 2, "note": "undone"})
        nested.rollback()
        nested = conn.begin_nested()
        INSERT.write(conn, {"id": 3, "note": "released"})
        nested.commit()

    assert notes(engine) == ["kept", "released"]


def test_a_failure_reported_by_a_read_leaves_pipeline_mode_so_a_savepoint_can_roll_back(
    engine: Engine,
) -> None:
    """The read that reports a queued write's failure leaves pipeline mode at once: else the
    rollback to the savepoint would meet the pipeline's "aborted" state, an OperationalError
    the workers would take for an outage, in place of the IntegrityError."""
    with engine.begin() as conn:
        INSERT.write(conn, {"id": 1, "note": "there"})

    with engine.begin() as conn, deferred_writes(conn):
        nested = conn.begin_nested()
        INSERT.write(conn, {"id": 1, "note": "duplicate"})
        with pytest.raises(IntegrityError):
            NOTES.rows(conn, {})
        assert open_pipeline(conn) is None
        nested.rollback()
        INSERT.write(conn, {"id": 2, "note": "after"})

    assert notes(engine) == ["there", "after"]


def test_an_exception_in_the_block_rolls_back_and_leaves_the_connection_usable(
    engine: Engine,
) -> None:
    def fail_after_writes(conn: Connection) -> None:
        INSERT.write(conn, {"id": 1, "note": "undone"})
        raise LookupError("a handler refused")

    with pytest.raises(LookupError), engine.begin() as conn, deferred_writes(conn):
        fail_after_writes(conn)

    with engine.begin() as conn:
        assert open_pipeline(conn) is None
        INSERT.write(conn, {"id": 2, "note": "next"})
    assert notes(engine) == ["next"]


def test_deferred_writes_change_nothing_on_sqlite(sqlite_engine: Engine) -> None:
    probe_metadata.create_all(sqlite_engine)
    with sqlite_engine.begin() as conn, deferred_writes(conn):
        INSERT.write(conn, {"id": 1, "note": "at once"})
        assert open_pipeline(conn) is None
        with pytest.raises(IntegrityError), savepoint(conn, "probe"):
            INSERT.write(conn, {"id": 1, "note": "duplicate"})
            pytest.fail("SQLite should have refused the duplicate where it was written")

    assert notes(sqlite_engine) == ["at once"]
