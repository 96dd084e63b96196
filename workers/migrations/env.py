"""Alembic environment: every package keeps its own branch of revisions (ledger, policy,
scheduler), so `upgrade heads` builds the whole schema.

`recourse migrate` hands its engine in through `config.attributes["engine"]`; the stock Alembic
CLI (`alembic upgrade heads`, `alembic check`, with the repository's alembic.ini) builds one
from `sqlalchemy.url` in the ini file or `-x db=URL`, else `DATABASE_URL`, with the same
settings as the engine's own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from console.tables import metadata as console_metadata
from ledger.tables import metadata as ledger_metadata
from policy.tables import metadata as policy_metadata
from scheduler.tables import metadata as scheduler_metadata
from workers.intake.tables import metadata as intake_metadata

target_metadata = [
    ledger_metadata,
    policy_metadata,
    scheduler_metadata,
    intake_metadata,
    console_metadata,
]


def _engine() -> tuple[Engine, bool]:
    """The engine to migrate, and whether this file made it (and so disposes of it)."""
    given: Engine | None = context.config.attributes.get("engine")
    if given is not None:
        return given, False
    from workers.database import make_engine
    from workers.settings import load_settings

    url = (
        context.get_x_argument(as_dictionary=True).get("db")
        or context.config.get_main_option("sqlalchemy.url")
        or load_settings().database_url
    )
    return make_engine(url), True


engine, owned = _engine()
try:
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=engine.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    if owned:
        engine.dispose()
