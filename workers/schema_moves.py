"""What `recourse migrate --check` and `recourse migrate --to REVISION` do to a schema.

Each package keeps its revisions in a branch of its own (ledger, policy, scheduler, intake,
console), so "where the database is" is one revision per branch and "behind" means some
branch's head is not among them. `--to` moves one branch: forward with Alembic's upgrade,
back with its downgrade; the other branches stay where they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import typer
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from workers.database import alembic_config, current_revisions, make_engine
from workers.operator.errors import UsageProblem
from workers.preflight import check_database

UPGRADED, DOWNGRADED, UNCHANGED = "upgraded", "downgraded", "unchanged"


@dataclass(frozen=True)
class SchemaState:
    current: list[str]
    """The revisions the database is at, one per branch it has."""
    heads: list[str]
    """The newest revision of every branch the code has."""
    known: frozenset[str] = frozenset()
    """Every revision the code has."""

    @property
    def behind(self) -> list[str]:
        """The heads the database lacks: what `recourse migrate` would apply up to."""
        return sorted(set(self.heads) - set(self.current))

    @property
    def ahead(self) -> list[str]:
        """Revisions of the database the code does not know (a newer release wrote them)."""
        return sorted(set(self.current) - self.known)


def schema_state(engine: Engine) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config(engine))
    return SchemaState(
        current=current_revisions(engine),
        heads=sorted(script.get_heads()),
        known=frozenset(rev.revision for rev in script.walk_revisions()),
    )


def move_to(engine: Engine, revision: str) -> str:
    """Upgrade or downgrade the branch of `revision` to it; say which (or `unchanged`)."""
    config = alembic_config(engine)
    script = ScriptDirectory.from_config(config)
    try:
        target = script.get_revision(revision)
    except CommandError:
        target = None
    if target is None:
        known = ", ".join(sorted(rev.revision for rev in script.walk_revisions()))
        raise UsageProblem(f"no revision {revision!r}", f"name one of {known}")
    current = current_revisions(engine)
    if revision in current:
        return UNCHANGED
    # Behind a current revision of its branch: the way back; otherwise ahead of it.
    older = (
        {rev.revision for rev in script.iterate_revisions(tuple(current), "base")}
        if current
        else set()
    )
    if revision in older:
        command.downgrade(config, revision)
        return DOWNGRADED
    command.upgrade(config, revision)
    return UPGRADED


def print_check(url: str, setting: str, *, as_json: bool) -> bool:
    """`recourse migrate --check`: print where the database at `url` stands against the code,
    as one JSON object or one line (`error: ...; ...` when it is behind); True when it is not
    behind. It changes nothing: an empty database stays empty."""
    parsed = make_url(url)
    where = parsed.render_as_string(hide_password=True)
    path = parsed.database
    in_a_file = parsed.get_backend_name() == "sqlite" and path and path != ":memory:"
    missing_file = bool(in_a_file) and not Path(str(path)).is_file()
    if missing_file:
        # Connecting would create the file: a check creates nothing.
        engine = make_engine("sqlite://")
        state = SchemaState(current=[], heads=schema_state(engine).heads)
    else:
        check_database(url, setting=setting, schema=False)
        engine = make_engine(url)
        try:
            state = schema_state(engine)
        finally:
            engine.dispose()
    ok = not state.behind
    if as_json:
        report = {
            "database": where,
            "ok": ok,
            "revisions": state.current,
            "heads": state.heads,
            "behind": state.behind,
            "ahead": state.ahead,
        }
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
    elif ok:
        typer.echo(f"the schema on {where} is at the code's revisions ({', '.join(state.heads)})")
    else:
        have = ", ".join(state.current) or "no Recourse schema"
        typer.echo(
            f"error: the schema on {where} is behind the code (it has {have}; the code has "
            f"{', '.join(state.heads)}); run `recourse migrate` with the same database",
            err=True,
        )
    return ok
