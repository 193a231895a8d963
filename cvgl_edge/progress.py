"""One progress-bar helper so long work looks the same everywhere (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def make_progress(transient: bool = False) -> Progress:
    """A rich Progress with count, elapsed/remaining time and a free-text stats column."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console,
        transient=transient,
    )


@contextmanager
def progress_bar(
    description: str, total: int, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a transient bar when enabled."""
    if not enabled:
        yield lambda n: None
        return
    with make_progress(transient=True) as progress:
        task = progress.add_task(description, total=total, stats="")
        yield lambda n: progress.advance(task, n)
