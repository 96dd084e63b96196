"""The ledger's hand-written migration builds exactly the tables `ledger.tables` describes."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Column, Connection, Engine, MetaData, inspect

from ledger.tables import metadata
from workers.database import alembic_config


def ledger_differences(conn: Connection, target: MetaData = metadata) -> list[Any]:
    """What alembic would change to make the ledger's tables match `target`."""

    def ledger_only(name: str | None, type_: str, _parent: object) -> bool:
        return type_ != "table" or (name or "").startswith("ledger_")

    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "include_name": ledger_only}
    )
    return list(compare_metadata(context, target))


def test_the_migrated_sqlite_schema_matches_the_tables_module(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert ledger_differences(conn) == []


def test_the_comparison_would_see_a_difference(sqlite_engine: Engine) -> None:
    """Guards the test above: an empty list must not come from comparing nothing."""
    changed = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["ledger_transfers"].append_column(Column("extra", BigInteger))

    with sqlite_engine.connect() as conn:
        differences = ledger_differences(conn, changed)

    assert [difference[0] for difference in differences] == ["add_column"]


def test_the_ledger_branch_downgrades_to_nothing_and_upgrades_again(sqlite_engine: Engine) -> None:
    config = alembic_config(sqlite_engine)

    command.downgrade(config, "ledger@base")
    with sqlite_engine.connect() as conn:
        assert not [name for name in inspect(conn).get_table_names() if name.startswith("ledger_")]

    command.upgrade(config, "heads")
    with sqlite_engine.connect() as conn:
        assert ledger_differences(conn) == []
