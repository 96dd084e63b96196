"""Alembic environment: every package keeps its own branch of revisions (ledger, policy,
scheduler, workers), so `upgrade heads` builds the whole schema."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

engine: Engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, render_as_batch=engine.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
