"""`replay`, `publish` and `verify` draw a progress bar on a terminal, and none with `--json`
or off a terminal. The commands run under a pseudo-terminal, as a person would run them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from workers.cli.book import PROGRESS_FROM_LINES

RECOURSE = [sys.executable, "-c", "from workers.cli import app; app()"]
ROOT = Path(__file__).resolve().parents[2]
WEEK = ROOT / "examples" / "spectrum-week.jsonl"


def on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run `recourse ARGS` with stdin, stdout and stderr on a pseudo-terminal; what it drew."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*RECOURSE, *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm", **env},
        close_fds=True,
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the process closed its end
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert process.wait(timeout=120) in {0, 1}
    return drawn.decode(errors="replace")


def off_a_terminal(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*RECOURSE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.fixture
def migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = subprocess.run([*RECOURSE, "migrate", "--db", url], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    return url


@pytest.fixture
def long_story(tmp_path: Path) -> Path:
    """A file long enough for replay's bar: the week, its events sent again and again (each
    copy after the first is a duplicate)."""
    week = WEEK.read_text("utf-8").splitlines()
    copies = PROGRESS_FROM_LINES // len(week) + 1
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(week * copies) + "\n", encoding="utf-8")
    return path


def test_replay_draws_a_bar_on_a_terminal_only(long_story: Path) -> None:
    assert "replaying" in on_a_terminal(["replay", str(long_story)], {})
    assert "replaying" not in on_a_terminal(["replay", str(long_story), "--json"], {})
    assert "replaying" not in off_a_terminal(["replay", str(long_story)], {})


def test_verify_draws_a_bar_on_a_terminal_only(migrated_sqlite: str) -> None:
    drawn = on_a_terminal(["verify", "--db", migrated_sqlite], {})
    as_json = on_a_terminal(["verify", "--db", migrated_sqlite, "--json"], {})

    assert "verifying" in drawn
    assert "verifying" not in as_json
    assert json.loads(as_json[as_json.index("{") :])["same"] is True
    assert "verifying" not in off_a_terminal(["verify", "--db", migrated_sqlite], {})


@pytest.mark.rabbitmq
def test_publish_draws_a_bar_on_a_terminal_only(rabbit_url: str, migrated_sqlite: str) -> None:
    env = {"BROKER_URL": rabbit_url, "DATABASE_URL": migrated_sqlite}
    # `migrate` with BROKER_URL declares the exchange that publish sends to.
    assert json.loads(off_a_terminal(["migrate", "--json"], env))["broker_declared"] is True

    drawn = on_a_terminal(["publish", str(WEEK)], env)
    as_json = on_a_terminal(["publish", str(WEEK), "--json"], env)

    assert "publishing" in drawn
    assert "sent 38 events to refunds.events" in drawn
    assert "publishing" not in as_json
    assert "publishing" not in off_a_terminal(["publish", str(WEEK)], env)
