"""`recourse replay` on the SC-6 worked example: the client gets $520 back, in both the JSON
report and the readable statement."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from workers.cli import app

SC6_STORY = Path(__file__).resolve().parents[2] / "examples" / "sc6-worked-example.jsonl"


def test_sc6_replay_json_gives_the_client_520_dollars() -> None:
    """SC-6: $500 milestone released, disputed, fully refunded: client 520.00, creator 0.00,
    platform fees 0.00."""
    result = CliRunner().invoke(app, ["replay", str(SC6_STORY), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    balances = report["balances"]
    assert balances["user:ana"] == {"USD": 52000}
    assert balances["user:ben"] == {"USD": 0}
    assert balances["platform:fees"] == {"USD": 0}
    assert balances["escrow:m-logo"] == {"USD": 0}
    assert report["rejections"] == []
    assert report["dead_letters"] == []
    (completed,) = [n for n in report["notifications"] if n["type"] == "refund.completed"]
    assert completed["data"]["credited_to_client_minor"] == 52000


def test_sc6_replay_statement_shows_the_client_520_dollars() -> None:
    """SC-6 in the readable statement: the client's line reads 520.00 USD."""
    result = CliRunner().invoke(app, ["replay", str(SC6_STORY)], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert re.search(r"user:ana\W+520\.00 USD", result.stdout)
    assert re.search(r"user:ben\W+0\.00 USD", result.stdout)
    assert "refund.completed" in result.stdout


def test_the_demo_at_80_columns_shows_every_detail_whole_in_dollars() -> None:
    """`./scripts/demo` is this replay: at 80 columns nothing is cut (`…`), amounts read like
    the balances, a field without a value is left out, and the negative card account is
    explained."""
    week = Path(__file__).resolve().parents[2] / "examples" / "spectrum-week.jsonl"

    result = CliRunner().invoke(app, ["replay", str(week)], env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "…" not in result.stdout
    assert "None" not in result.stdout
    details = [line for line in result.stdout.splitlines() if line.startswith("    ")]
    assert details
    assert not [line for line in details if "_minor:" in line]
    assert re.search(r"external:card\W+-2,964\.00 USD", result.stdout)
    assert "external:card is minus what clients paid by card" in " ".join(result.stdout.split())
    assert "    refund: 800.00 USD\n" in result.stdout
    assert "    credited_to_client: 832.00 USD\n" in result.stdout
