"""The root command group: every command's failure becomes one line, unless `--debug`.

Putting this in the group rather than in each command covers every command of the app,
including ones added later, with no handler to forget.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from workers.operator.errors import explain

if TYPE_CHECKING:
    # Typer vendors Click and hands every command this context class (`typer.Context` is a
    # subclass it only names in signatures), so overriding `invoke` must accept it.
    from typer._click import Context

DEBUG_KEY = "recourse.debug"
"""Where the root callback leaves `--debug` in the context's `meta`, shared by all commands."""


class OneLineErrors(TyperGroup):
    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Typer reports a usage mistake (an unknown option, a missing argument, a bad value)
        in a box of its own; here it is one line like every other failure, exit code 2."""
        run = functools.partial(
            super().main,
            args,
            prog_name,
            complete_var,
            standalone_mode=False,
            windows_expand_args=windows_expand_args,
            **extra,
        )
        if not standalone_mode:
            return run()
        try:
            result = run()
        except NoArgsIsHelpError as exc:
            # `recourse dlq` alone: its help, as Typer shows it, and the same exit code.
            typer.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            sys.exit(exc.exit_code)
        except ClickException as exc:
            where = exc.ctx.command_path if isinstance(exc, UsageError) and exc.ctx else "recourse"
            message = exc.format_message().rstrip(".")
            print(f"error: {message}; see `{where} --help`", file=sys.stderr)
            sys.exit(exc.exit_code)
        except typer.Abort:
            print("error: aborted; run the command again to finish it", file=sys.stderr)
            sys.exit(1)
        # Without standalone mode Typer returns an exit it caught as its code.
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise  # usage errors, exits and aborts are Typer's own to report
        except Exception as exc:
            if ctx.meta.get(DEBUG_KEY):
                raise
            failure = explain(exc)
            print(f"error: {failure}", file=sys.stderr)
            raise typer.Exit(failure.exit_code) from None


def set_debug(ctx: Context, debug: bool) -> None:
    ctx.meta[DEBUG_KEY] = debug


def is_debug(ctx: Context) -> bool:
    return bool(ctx.meta.get(DEBUG_KEY))
