"""The root command group: every command's failure becomes one line, unless `--debug`.

Putting this in the group rather than in each command covers every command of the app,
including ones added later, with no handler to forget.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from workers.operator.errors import explain

if TYPE_CHECKING:
    # Typer vendors Click and hands every command this context class (`typer.Context` is a
    # subclass it only names in signatures), so overriding `invoke` must accept it.
    from typer._click import Context

DEBUG_KEY = "recourse.debug"
"""Where the root callback leaves `--debug` in the context's `meta`, shared by all commands."""


class OneLineErrors(TyperGroup):
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
