"""`./scripts/demo --console`: the demo's story replayed into an embedded SQLite store, one
local operator of each role (two of the dispute team, for the second pair of eyes), and the
console serving that store. The operators share one password, made up afresh on each run and
printed with their names.

    python -m console.demo [--story FILE] [--db FILE] [--port N]
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from console.accounts import add_operator
from console.roles import Role
from console.server import serve
from console.settings import ConsoleSettings
from policy.config import load_policies
from workers.database import make_engine, migrate
from workers.replay import replay_lines
from workers.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
STORY = ROOT / "examples" / "spectrum-week.jsonl"
DATABASE = Path("recourse-demo.sqlite")
OPERATORS = (
    ("dana", Role.DISPUTE_TEAM),
    ("dave", Role.DISPUTE_TEAM),
    ("sue", Role.SUPPORT),
    ("fay", Role.FINANCE),
    ("ada", Role.ADMIN),
)


def prepare(story: Path, database: Path, password: str) -> str:
    """Replay `story` into a new SQLite file at `database` (the demo's own: one left by an
    earlier demo is replaced) and add the demo operators; the database URL."""
    database.unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    engine = make_engine(url)
    try:
        migrate(engine)
        lines = story.read_text(encoding="utf-8").splitlines()
        report = replay_lines(engine, lines, load_policies(), own_database=True)
        with engine.begin() as conn:
            for name, role in OPERATORS:
                add_operator(conn, name, role, password, at=datetime.now(UTC))
    finally:
        engine.dispose()
    print(
        f"replayed {story.name} into {database}: {report.events_read} events read, "
        f"{len(report.rejections)} rejected, {len(report.dead_letters)} dead-lettered "
        "(./scripts/demo prints the whole statement)"
    )
    return url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./scripts/demo --console", description=__doc__)
    parser.add_argument("--story", type=Path, default=STORY)
    parser.add_argument("--db", type=Path, default=DATABASE, help="the demo's SQLite file")
    parser.add_argument("--port", type=int, default=ConsoleSettings().console_port)
    args = parser.parse_args(argv)
    password = secrets.token_urlsafe(12)
    url = prepare(args.story, args.db, password)
    print("operators (password for each: " + password + "):")
    for name, role in OPERATORS:
        print(f"  {name:<6} {role.value}")
    print(f"console: http://127.0.0.1:{args.port}/  (Ctrl-C stops it)", flush=True)
    # Embedded whatever the environment says: the demo's store, no broker.
    settings = load_settings().model_copy(update={"database_url": url, "broker_url": None})
    console = ConsoleSettings().model_copy(
        update={"console_port": args.port, "console_broker_url": None}
    )
    serve(settings, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
