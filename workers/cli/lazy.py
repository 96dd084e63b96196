"""A root command group that imports a command's module only when that command is run.

Every command module imports what it needs at its top; listing the commands (`recourse
--help`) must not import them all, so the group lists each command by the name and summary it
is given and loads the module behind it when the command is resolved to run, to print its own
help, or to complete its options.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from workers.operator.group import OneLineErrors

if TYPE_CHECKING:
    from typer._click import Command, Context


@dataclass(frozen=True)
class Listed:
    """A command as `recourse --help` lists it, and the module that declares it."""

    name: str
    module: str
    """Its module has a `typer.Typer` named `app` that declares the command."""
    summary: str
    """The first paragraph of the command's help (tests check the two agree)."""

    def load(self) -> Command:
        declared = typer.main.get_command(import_module(self.module).app)
        # A module's app of one command is built as that command, of several as a group.
        commands = declared.commands if isinstance(declared, TyperGroup) else {}
        command = commands.get(self.name, declared)
        if command.name != self.name:
            raise LookupError(f"{self.module} declares no command {self.name!r}")
        return command


class _Unloaded(TyperCommand):
    """What the listing shows of a command whose module is not imported yet."""

    def __init__(self, listed: Listed) -> None:
        super().__init__(listed.name, help=listed.summary)
        self.listed = listed


class LazyCommands(OneLineErrors):
    listing: ClassVar[tuple[Listed, ...]] = ()
    """The commands, in the order the help lists them; a subclass sets it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for listed in self.listing:
            self.commands.setdefault(listed.name, _Unloaded(listed))

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, _Unloaded):
            command = self.commands[name] = command.listed.load()
        return name, command, rest
