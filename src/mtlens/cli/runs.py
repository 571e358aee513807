"""`mtlens runs ...`: list the runs of a store, show one, export their metrics as CSV, remove runs.

list, show and export open the store read-only. A 'running' run whose process is gone is shown as "dead".
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mtlens.errors import MtlensError
from mtlens.paths import writable_path
from mtlens.runs import DEFAULT_STORE, Run, RunStore

app = typer.Typer(help="The run store: list runs, show one, export metrics, remove runs.", no_args_is_help=True)

_STORE_HELP = "Run store file (SQLite)."
_STATUS_HELP = "Only runs in this state: created, running, finished, failed, interrupted, or dead (process gone)."
# Columns for metrics in `runs list` when --metric is not given: the first few names, alphabetically.
_DEFAULT_METRIC_COLUMNS = 3
_PIPE_WIDTH = 240


@app.command("list")
def list_runs(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP),
    study: Optional[str] = typer.Option(None, "--study", help="Only runs of this study."),
    status: Optional[str] = typer.Option(None, "--status", help=_STATUS_HELP),
    metric: Optional[list[str]] = typer.Option(
        None, "--metric", help="Metric to show as a column (repeatable); default: the first few logged."
    ),
) -> None:
    """List the runs in a store, oldest first, with a few final metrics."""
    runs_store = RunStore(store, read_only=True)
    runs = runs_store.list_runs(study=study, status=status)
    console = _console()
    if not runs:
        filters = "".join(f" with {k} {v!r}" for k, v in (("study", study), ("status", status)) if v)
        console.print(Text(f"no runs{filters} in {store}"))
        return
    finals = {run.id: _final_values(runs_store, run) for run in runs}
    names = list(metric) if metric else sorted({n for v in finals.values() for n in v})[:_DEFAULT_METRIC_COLUMNS]
    table = Table(title=Text(f"{len(runs)} run{'s' if len(runs) > 1 else ''} in {store}"), caption="times in UTC")
    for header in ("id", "study", "name", "seed", "status", "started", "duration"):
        table.add_column(header, justify="right" if header in ("seed", "duration") else "left", no_wrap=True)
    for name in names:
        table.add_column(Text(name), justify="right", no_wrap=True)
    now = time.time()
    for run in runs:
        cells = [
            run.id,
            run.study,
            run.name or "",
            str(run.seed),
            run.state,
            _utc(run.timings.started_at),
            _list_duration(run, now),
        ]
        cells += [_number(finals[run.id].get(name)) for name in names]
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)


@app.command("show")
def show_run(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the config as JSON instead of YAML."),
) -> None:
    """Show one run: status, timings, config, final value of each metric, artifacts directory."""
    import yaml

    runs_store = RunStore(store, read_only=True)
    run = runs_store.get_run(runs_store.resolve_id(run_id))
    finals = runs_store.final_metrics(run.id)
    console = _console()
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    t = run.timings
    rows = [
        ("run", run.id),
        ("study", run.study),
        ("name", run.name or ""),
        ("seed", str(run.seed)),
        ("status", _show_state(run)),
        ("created", _utc(t.created_at, seconds=True)),
        ("started", _utc(t.started_at, seconds=True)),
        ("ended", _utc(t.finished_at, seconds=True)),
        ("duration", _show_duration(run)),
        ("config hash", run.config_hash),
        ("artifacts", str(run.artifacts_dir)),
    ]
    if run.error is not None:
        where = f" (at step {run.error_step})" if run.error_step is not None else ""
        rows.append(("error", run.error + where))
    for key, value in rows:
        fields.add_row(key, Text(value))
    console.print(fields)
    console.print(Text("config", style="bold"))
    config_text = (
        json.dumps(run.config, indent=2, sort_keys=True)
        if as_json
        else yaml.safe_dump(run.config, sort_keys=True, default_flow_style=False).rstrip()
    )
    console.print(Text(config_text), soft_wrap=True)
    if finals:
        table = Table(title="final metrics")
        table.add_column("metric")
        table.add_column("step", justify="right")
        table.add_column("value", justify="right")
        for name, (step, value) in finals.items():
            table.add_row(Text(name), str(step), _number(value, digits=6))
        console.print(table)
    else:
        console.print(Text("no metrics logged"))
    if run.summary:
        table = Table(title="summary")
        table.add_column("name")
        table.add_column("value", justify="right")
        for name, value in sorted(run.summary.items()):
            table.add_row(Text(name), _number(value, digits=6))
        console.print(table)


@app.command("export")
def export_runs(
    csv_path: str = typer.Option(..., "--csv", help="CSV file to write ('-' for standard output)."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP),
    study: Optional[str] = typer.Option(None, "--study", help="Only runs of this study."),
    run: Optional[list[str]] = typer.Option(None, "--run", help="Only this run (repeatable; unique id prefixes)."),
) -> None:
    """Export metrics as CSV: one row per (run, metric, step) with the run's id, study, name, seed and status."""
    if run and study is not None:
        raise MtlensError("pass either --run (those runs) or --study (all runs of a study), not both")
    runs_store = RunStore(store, read_only=True)
    if csv_path != "-":
        writable_path(csv_path, "CSV file")  # before reading the store
    if run:
        run_ids = [runs_store.resolve_id(prefix) for prefix in run]
    else:
        run_ids = [r.id for r in runs_store.list_runs(study=study)]
    if not run_ids:
        where = f" of study {study!r}" if study is not None else ""
        raise MtlensError(f"no run{where} matched in {store}; nothing to export (`mtlens runs list` shows the runs)")
    if csv_path == "-":
        runs_store.export_csv(sys.stdout, run_ids)
        return
    count = runs_store.export_csv(csv_path, run_ids)
    print(f"wrote {count} metric rows of {len(run_ids)} runs to {csv_path}")


@app.command("rm")
def remove_runs(
    run_ids: Optional[list[str]] = typer.Argument(None, help="Run ids (unique prefixes) to remove."),
    store: Path = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP),
    study: Optional[str] = typer.Option(None, "--study", help="Remove the runs of this study."),
    status: Optional[str] = typer.Option(None, "--status", help="Remove the runs in this state (e.g. failed, dead)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print what would be removed."),
    force: bool = typer.Option(False, "--force", help="Also remove running runs whose process cannot be checked."),
) -> None:
    """Remove runs: their row, their metrics and their artifacts folder (checkpoints, figures)."""
    if run_ids and (study is not None or status is not None):
        raise MtlensError("pass either run ids or --study/--status filters, not both")
    if not run_ids and study is None and status is None:
        raise MtlensError("say which runs to remove: run ids, --study STUDY and/or --status STATUS")
    runs_store = RunStore(store, create=False)
    if run_ids:
        chosen = [runs_store.resolve_id(prefix) for prefix in run_ids]
    else:
        chosen = [r.id for r in runs_store.list_runs(study=study, status=status)]
        if not chosen:
            filters = " and ".join(f"{k} {v!r}" for k, v in (("study", study), ("status", status)) if v is not None)
            raise MtlensError(f"no run with {filters} in {store}; nothing removed")
    removed = runs_store.remove_runs(chosen, force=force, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        run = item.run
        folder = f", folder {item.artifacts_dir}" if item.artifacts_dir is not None else ""
        print(f"{verb} {run.id} ({run.study}{' ' + run.name if run.name else ''}, {run.state}): "
              f"{item.metric_rows} metric rows{folder}")
    total = sum(item.metric_rows for item in removed)
    print(f"{verb} {len(removed)} run{'s' if len(removed) != 1 else ''} ({total} metric rows) from {store}")


def _list_duration(run: Run, now: float) -> str:
    """Returns the duration column: '' before the first start, '?' for a dead run (its end is unknown)."""
    if not run.timings.started_at:
        return ""
    return "?" if run.dead else _duration(run.timings.elapsed(run.status, now))


def _show_state(run: Run) -> str:
    """Returns the status line of `runs show`, which says what to do with a dead run."""
    if not run.dead:
        return run.state
    return (f"dead (stored as running, but process {run.pid} on {run.host} is gone; "
            "`mtlens train --resume` continues it, `mtlens runs rm` removes it)")


def _show_duration(run: Run) -> str:
    """Returns the duration line of `runs show` (a dead run's last attempt has no known end)."""
    attempts = f"over {run.attempts} attempt(s)"
    if run.dead:
        return f"{_duration(run.timings.wall_seconds)} {attempts}, plus the killed attempt (its end is unknown)"
    return f"{_duration(run.timings.elapsed(run.status, time.time()))} {attempts}"


def _console() -> Console:
    """Returns a console for stdout; wide when stdout is not a terminal, so piped tables are not cut."""
    return Console() if sys.stdout.isatty() else Console(width=_PIPE_WIDTH)


def _final_values(store: RunStore, run: Run) -> dict[str, float]:
    """Returns the run's summary values, over the last logged value of each metric."""
    values = {name: value for name, (_, value) in store.final_metrics(run.id).items()}
    values.update(run.summary)
    return values


def _utc(timestamp: float | None, *, seconds: bool = False) -> str:
    """Returns the Unix time as 'YYYY-MM-DD HH:MM[:SS]' in UTC, '' for None."""
    if timestamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.gmtime(timestamp))


def _duration(seconds: float) -> str:
    """Returns a duration as '12.3s', '4m05s' or '2h03m'."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _number(value: float | None, digits: int = 4) -> str:
    """Returns the value with ``digits`` significant digits, '' for None."""
    return "" if value is None else f"{value:.{digits}g}"
