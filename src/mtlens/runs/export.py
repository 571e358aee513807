"""CSV export of a store's metrics: one row per (run, metric, step), written whole or not at all."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mtlens.errors import MtlensError
from mtlens.paths import writable_path

if TYPE_CHECKING:
    from mtlens.runs.store import RunStore

CSV_COLUMNS = ("run_id", "study", "run_name", "seed", "status", "config_hash", "metric", "step", "value")


def export_csv(store: RunStore, dest: str | os.PathLike[str] | IO[str], run_ids: Iterable[str] | None = None) -> int:
    """Writes the CSV of the runs (all when `run_ids` is None) to a path or an open text file; returns the row count.

    The status column is the run's state (`Run.state`: "dead" for a running run whose process is gone). A path
    is checked before any row is read and written through a temporary file renamed at the end, so a failed
    export leaves no partial file.
    """
    path = None if not isinstance(dest, (str, os.PathLike)) else writable_path(dest, "CSV file")
    runs = store.list_runs() if run_ids is None else [store.get_run(run_id) for run_id in run_ids]
    if path is None:
        return _write(store, dest, runs)  # type: ignore[arg-type]
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            count = _write(store, handle, runs)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise MtlensError(f"cannot write CSV file {path}: {err.strerror or err}") from None
    return count


def _write(store: RunStore, handle: IO[str], runs: list) -> int:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for run in runs:
        for metric in store.metrics(run.id):
            # repr keeps every digit so that the CSV reads back to the stored doubles exactly
            writer.writerow(
                (run.id, run.study, run.name or "", run.seed, run.state, run.config_hash,
                 metric.name, metric.step, repr(metric.value))
            )
            count += 1
    return count
