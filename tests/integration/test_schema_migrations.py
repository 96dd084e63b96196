"""The migrations build exactly the tables the code describes, for every package.

Each package keeps its own migration branch; the engine's state (policy) and the deadline
store (scheduler) are compared here table by table, on SQLite and on PostgreSQL, so a column
added to a `tables.py` without its migration fails the suite.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData

from console.tables import metadata as console_metadata
from policy.tables import metadata as policy_metadata
from scheduler.tables import metadata as scheduler_metadata

PACKAGES = {
    "console": console_metadata,
    "policy": policy_metadata,
    "scheduler": scheduler_metadata,
}


def differences(engine: Engine, target: MetaData) -> list[Any]:
    """What alembic would change to make the database's copy of `target`'s tables match it."""
    names = set(target.tables)

    def only_these_tables(name: str | None, type_: str, _parent: object) -> bool:
        return type_ != "table" or name in names

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": only_these_tables}
        )
        return list(compare_metadata(context, target))


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_migrated_sqlite_schema_matches_the_tables(package: str, sqlite_engine: Engine) -> None:
    assert differences(sqlite_engine, PACKAGES[package]) == []


@pytest.mark.postgres
@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_migrated_postgresql_schema_matches_the_tables(package: str, pg_engine: Engine) -> None:
    assert differences(pg_engine, PACKAGES[package]) == []


def test_the_comparison_sees_a_column_the_migration_lacks(sqlite_engine: Engine) -> None:
    """Guards the tests above: an empty list must not come from comparing nothing."""
    from sqlalchemy import BigInteger, Column

    changed = MetaData()
    for table in policy_metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["outbox"].append_column(Column("extra_minor", BigInteger))

    found = differences(sqlite_engine, changed)

    assert [item[0] for item in found] == ["add_column"]
