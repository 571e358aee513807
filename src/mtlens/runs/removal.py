"""Removing runs from a store: rows in one transaction, then only the folders the store itself owns."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mtlens.errors import MtlensError
from mtlens.runs.records import Run

if TYPE_CHECKING:
    from mtlens.runs.database import Database
    from mtlens.runs.store import RunStore


class Removal(NamedTuple):
    """A run removed from a store: the run as it was, its metric rows, its artifacts folder (None if none)."""

    run: Run
    metric_rows: int
    artifacts_dir: Path | None


def remove_runs(store: RunStore, db: Database, run_ids: Iterable[str], *, force: bool = False,
                dry_run: bool = False) -> list[Removal]:
    """Removes runs with their metrics and artifacts folders; returns what was (or would be) removed.

    A running run whose process is alive, or on another host (cannot be checked), is refused unless
    ``force``: its process would keep writing to a run that no longer exists. Rows go in one transaction,
    then the folders; a folder is removed only where the store puts it (``artifacts/<run id>`` next to the
    store file), so a store edited to point elsewhere cannot make this delete other files.
    """
    ids = list(dict.fromkeys(run_ids))
    runs = [store.get_run(run_id) for run_id in ids]
    if not force:
        for run in runs:
            if run.status == "running" and not run.dead:
                raise MtlensError(
                    f"run {run.id} is running (process {run.pid} on {run.host}); stop it first, "
                    "or pass --force if that process is gone"
                )

    def delete(conn: sqlite3.Connection) -> list[int]:
        counts = []
        for run in runs:
            counts.append(conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run.id,)).fetchone()[0])
            if not dry_run:
                conn.execute("DELETE FROM metrics WHERE run_id = ?", (run.id,))
                conn.execute("DELETE FROM runs WHERE id = ?", (run.id,))
        return counts

    counts = db.read(delete) if dry_run else db.write(delete)
    removals = []
    for run, count in zip(runs, counts):
        folder = _own_artifacts_dir(store, run)
        has_folder = folder is not None and folder.is_dir()
        if has_folder and not dry_run:
            try:
                shutil.rmtree(folder)
            except OSError as err:
                raise MtlensError(
                    f"removed run {run.id} from {store.path} but not its folder {folder} ({err.strerror}); "
                    "remove it by hand"
                ) from None
        removals.append(Removal(run, count, folder if has_folder else None))
    return removals


def _own_artifacts_dir(store: RunStore, run: Run) -> Path | None:
    """Returns the run's artifacts folder when it is the store's own ``artifacts/<id>``, else None."""
    own = (store.path.parent / "artifacts" / run.id).resolve()
    return own if run.artifacts_dir.resolve() == own else None
