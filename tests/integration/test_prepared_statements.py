"""`store.prepared`: statements run on the driver's cursor return what `Connection.execute`
returns and raise what it raises, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import ArgumentError, IntegrityError

from store.columns import UtcDateTime
from store.prepared import Prepared
from store.savepoints import savepoint

AT = datetime(2026, 3, 6, 23, 59, 30, tzinfo=UTC)

probe_metadata = MetaData()
probes = Table(
    "prepared_probes",
    probe_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("body", JSON, nullable=False),
    Column("flag", Boolean, nullable=False),
    Column("note", String(40)),
)

INSERT = Prepared(insert(probes))
BY_NAMES = Prepared(
    select(probes.c.name, probes.c.at, probes.c.body, probes.c.flag)
    .where(probes.c.name.in_(bindparam("names", expanding=True)))
    .order_by(probes.c.name)
)
# A value built into the statement ("flagged") beside bound ones.
FLAG = Prepared(
    update(probes)
    .where(probes.c.name == bindparam("row_name"))
    .values(flag=True, note="flagged", at=bindparam("new_at"))
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    found = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    assert isinstance(found, Engine)
    probe_metadata.create_all(found)
    yield found
    probe_metadata.drop_all(found)


def probe(name: str, *, at: datetime = AT, flag: bool = False) -> dict[str, object]:
    return {"name": name, "at": at, "body": {"amount_minor": 100, "name": name}, "flag": flag}


def test_rows_are_converted_as_execute_converts_them(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.run(conn, probe("a"))
        INSERT.run_many(conn, [probe("b", flag=True), probe("c")])
        prepared = BY_NAMES.rows(conn, {"names": ["a", "b", "c"]})
        core = conn.execute(
            select(probes.c.name, probes.c.at, probes.c.body, probes.c.flag)
            .where(probes.c.name.in_(["a", "b", "c"]))
            .order_by(probes.c.name)
        ).all()
    assert prepared == [tuple(row) for row in core]
    assert prepared[0] == ("a", AT, {"amount_minor": 100, "name": "a"}, False)
    assert prepared[0][1].tzinfo is UTC
    assert prepared[1][3] is True


def test_an_expanding_in_takes_any_number_of_values(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.run_many(conn, [probe(name) for name in "abcd"])
        assert [row[0] for row in BY_NAMES.rows(conn, {"names": ["c"]})] == ["c"]
        assert [row[0] for row in BY_NAMES.rows(conn, {"names": ["d", "a", "b"]})] == [
            "a",
            "b",
            "d",
        ]
        assert BY_NAMES.rows(conn, {"names": []}) == []
        assert BY_NAMES.first(conn, {"names": ["zz"]}) is None


def test_values_built_into_the_statement_are_sent_and_rowcount_says_what_changed(
    engine: Engine,
) -> None:
    later = AT + timedelta(days=1)
    with engine.begin() as conn:
        INSERT.run(conn, probe("a"))
        assert FLAG.run(conn, {"row_name": "a", "new_at": later}) == 1
        assert FLAG.run(conn, {"row_name": "missing", "new_at": later}) == 0
        row = conn.execute(select(probes.c.flag, probes.c.note, probes.c.at)).one()
    assert tuple(row) == (True, "flagged", later)


def test_a_driver_error_is_the_sqlalchemy_error_and_a_savepoint_undoes_only_its_block(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        INSERT.run(conn, probe("a"))
        with pytest.raises(IntegrityError), savepoint(conn, "probe_test"):
            INSERT.run(conn, probe("b"))
            INSERT.run(conn, probe("a"))
        INSERT.run(conn, probe("c"))
    with engine.connect() as conn:
        names = [row[0] for row in BY_NAMES.rows(conn, {"names": ["a", "b", "c"]})]
        conn.rollback()
    assert names == ["a", "c"]


def test_a_missing_parameter_is_named_and_a_naive_time_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(ArgumentError, match="new_at"):
            FLAG.run(conn, {"row_name": "a"})
        with pytest.raises(ValueError, match="naive datetime"):
            INSERT.run(conn, probe("a", at=datetime(2026, 3, 6, 12, 0)))


def test_a_connection_without_a_transaction_begins_one_like_execute(engine: Engine) -> None:
    with engine.connect() as conn:
        assert not conn.in_transaction()
        INSERT.run(conn, probe("a"))
        assert conn.in_transaction()
        conn.rollback()
        assert BY_NAMES.rows(conn, {"names": ["a"]}) == []
        conn.rollback()


def test_an_expanding_in_beside_other_parameters(engine: Engine) -> None:
    flagged_among = Prepared(
        select(probes.c.name)
        .where(
            probes.c.name.in_(bindparam("names", expanding=True)),
            probes.c.flag == bindparam("flag"),
            probes.c.at <= bindparam("until"),
        )
        .order_by(probes.c.name)
    )
    with engine.begin() as conn:
        INSERT.run_many(conn, [probe("a", flag=True), probe("b"), probe("c", flag=True)])
        found = flagged_among.rows(conn, {"names": ["a", "b", "c"], "flag": True, "until": AT})
        assert found == [("a",), ("c",)]
        assert flagged_among.rows(conn, {"names": ["b"], "flag": True, "until": AT}) == []


def _server_prepared(conn: Connection, needle: str) -> int:
    found = conn.execute(
        text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE :needle"),
        {"needle": f"%{needle}%"},
    ).scalar_one()
    return int(found)


@pytest.mark.postgres
def test_a_statement_planned_each_time_is_never_prepared_on_the_server(pg_engine: Engine) -> None:
    probe_metadata.create_all(pg_engine)
    try:
        # The same lookup twice; a comment tells the two texts apart on the server.
        cached = Prepared(
            select(probes.c.name)
            .where(probes.c.name.in_(bindparam("names", expanding=True)))
            .prefix_with("/* cached */")
        )
        planned = Prepared(
            select(probes.c.name)
            .where(probes.c.name.in_(bindparam("names", expanding=True)))
            .prefix_with("/* planned */"),
            plan_each_time=True,
        )
        with pg_engine.begin() as conn:
            INSERT.run_many(conn, [probe("a"), probe("b")])
            # psycopg prepares a statement on the server from its fifth execution.
            for _ in range(8):
                assert cached.rows(conn, {"names": ["a", "b"]}) == [("a",), ("b",)]
                assert planned.rows(conn, {"names": ["a", "b"]}) == [("a",), ("b",)]

            assert _server_prepared(conn, "/* cached */") == 1
            assert _server_prepared(conn, "/* planned */") == 0
    finally:
        probe_metadata.drop_all(pg_engine)


def test_a_statement_planned_each_time_answers_the_same(engine: Engine) -> None:
    planned = Prepared(
        select(probes.c.name).where(probes.c.name.in_(bindparam("names", expanding=True))),
        plan_each_time=True,
    )
    with engine.begin() as conn:
        INSERT.run_many(conn, [probe("a"), probe("b")])
        for _ in range(8):
            assert sorted(planned.rows(conn, {"names": ["a", "b", "z"]})) == [("a",), ("b",)]
