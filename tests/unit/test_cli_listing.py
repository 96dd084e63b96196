"""The root group lists commands without importing their modules; the listing must stay true."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import import_module

import typer.main
from typer.core import TyperGroup

from workers.cli import COMMANDS, app


def _first_paragraph(help_text: str) -> str:
    return " ".join(inspect.cleandoc(help_text).split("\n\n")[0].split())


def test_every_listed_summary_is_the_first_paragraph_of_its_commands_help() -> None:
    for listed in COMMANDS:
        command = listed.load()
        assert command.name == listed.name
        assert _first_paragraph(command.help or "") == " ".join(listed.summary.split())


def test_every_command_a_module_declares_is_listed() -> None:
    listed_names = {listed.name for listed in COMMANDS}
    for module in {listed.module for listed in COMMANDS}:
        declared = typer.main.get_command(import_module(module).app)
        names = set(declared.commands) if isinstance(declared, TyperGroup) else {declared.name}
        assert names <= listed_names, f"{module} declares commands COMMANDS does not list"


def test_the_help_imports_no_command_module() -> None:
    listing = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from workers.cli import app\n"
            "try:\n"
            "    app(['--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(sorted(name for name in sys.modules if name.startswith('workers.cli.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = listing.stdout.strip().splitlines()[-1]
    assert loaded == "['workers.cli.lazy']"
    for listed in COMMANDS:
        assert listed.name in listing.stdout


def test_a_command_runs_through_its_module() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    context = group.make_context("recourse", ["schema", "--help"], resilient_parsing=True)
    name, command, _rest = group.resolve_command(context, ["schema", "--help"])
    assert name == "schema"
    assert command is not None
    assert command.callback is not None
    assert command.callback.__module__ == "workers.cli.schemas"
