"""A Rich progress bar with ETA, or a silent stand-in when progress is off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def progress_bar(enabled: bool, total: int, done: int = 0, description: str = "") -> Iterator[Callable[[int], None]]:
    """Yields an `advance(n)` function that moves a Rich bar (elapsed and ETA), or does nothing when disabled."""
    if not enabled:
        yield lambda n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total, completed=done)
        yield lambda n: progress.advance(task, n)
