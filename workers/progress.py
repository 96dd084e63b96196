"""The progress bar of the long commands (`replay`, `publish`, `verify`).

It is drawn on stderr, only when stderr is a terminal and the command prints its result as
text: `--json`, a pipe or a log file get the result alone. The bar is transient: it is gone
once the work is done, and the result is printed below where it stood.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

Advance = Callable[[int], None]
"""Called with how many items are done so far."""


def shows_progress(*, as_json: bool) -> bool:
    return not as_json and sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int | None, *, shown: bool) -> Iterator[Advance]:
    """A bar for `total` items (None: unknown) while the body runs, when `shown`."""
    if not shown:
        yield lambda _done: None
        return
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


def count_lines(path: Path) -> int:
    """How many lines `path` has: the bar's total for a file read line by line."""
    with path.open("rb") as handle:
        return sum(1 for _ in handle)
