"""One Rich display for a study or sweep: cells done / running / failed, ETA, each running cell by name.

On a terminal it is a live progress panel; elsewhere (a log file, CI) one plain line per finished cell.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)


class Display:
    """Shows the cells of one engine run; `enabled=False` shows nothing."""

    def __init__(self, enabled: bool, title: str, total: int, skipped: int) -> None:
        self.enabled, self.title, self.total = enabled, title, total
        self.done, self.failed, self.skipped = skipped, 0, skipped
        self._console = Console(file=sys.stderr)
        self._live = enabled and self._console.is_terminal
        self._progress: Progress | None = None
        self._cells: dict[Hashable, TaskID] = {}

    def __enter__(self) -> Display:
        if self._live:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                TextColumn("{task.fields[state]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=self._console, transient=False)
            self._progress.__enter__()
            self._overall = self._progress.add_task(self.title, total=self.total, completed=self.done,
                                                    state=self._state(0))
        elif self.enabled:
            self._console.print(f"{self.title}: {self.total} cells, {self.skipped} already finished")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def _state(self, running: int) -> str:
        return f"[green]{self.done - self.failed} done[/] [red]{self.failed} failed[/] [cyan]{running} running[/]"

    def _refresh(self) -> None:
        if self._progress is not None:
            self._progress.update(self._overall, completed=self.done, state=self._state(len(self._cells)))

    def started(self, key: Hashable, name: str, attempt: int) -> None:
        """A cell went to a worker (attempt 1, or 2 for the retry)."""
        label = name + (f" [yellow](retry)[/]" if attempt > 1 else "")
        if self._progress is not None:
            self._cells[key] = self._progress.add_task("  " + label, total=None, state="")
        self._refresh()

    def ended(self, key: Hashable, name: str, status: str, seconds: float, reason: str | None = None) -> None:
        """A cell ended: 'finished', 'failed' (for good) or 'retry' (it goes back to the queue)."""
        if status != "retry":
            self.done += 1
            self.failed += status == "failed"
        if self._progress is not None:
            task = self._cells.pop(key, None)
            if task is not None:
                self._progress.remove_task(task)
            if status != "finished":
                self._progress.console.print(f"[red]{name}: {status}[/] ({reason})")
        elif self.enabled:
            extra = f": {reason}" if reason else ""
            self._console.print(f"[{self.done}/{self.total}] {name} {status} in {seconds:.1f} s{extra}", highlight=False)
        self._refresh()
