"""`mtlens runs ...`: list the runs of a store, show one, export their metrics as CSV."""

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
from mtlens.runs import DEFAULT_STORE, Run, RunStore

app = typer.Typer(help="The run store: list runs, show one, export metrics.", no_args_is_help=True)

_STORE_HELP = "Run store file (SQLite)."
# Columns for metrics in `runs list` when --metric is not given: the first few names, alphabetically.
_DEFAULT_METRIC_COLUMNS = 3
_PIPE_WIDTH = 240


@app.command("list")
def list_runs(
    store: Path = typer.Option(DEFAULT_STORE, "--store", help=_STORE_HELP),
    study: Optional[str] = typer.Option(None, "--study", help="Only runs of this study."),
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status."),
    metric: Optional[list[str]] = typer.Option(
        None, "--metric", help="Metric to show as a column (repeatable); default: the first few logged."
    ),
) -> None:
    """List the runs in a store, oldest first, with a few final metrics."""
    runs_store = RunStore(store, create=False)
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
            run.status,
            _utc(run.timings.started_at),
            _duration(run.timings.elapsed(run.status, now)) if run.timings.started_at else "",
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

    runs_store = RunStore(store, create=False)
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
        ("status", run.status),
        ("created", _utc(t.created_at, seconds=True)),
        ("started", _utc(t.started_at, seconds=True)),
        ("ended", _utc(t.finished_at, seconds=True)),
        ("duration", f"{_duration(t.elapsed(run.status, time.time()))} over {run.attempts} attempt(s)"),
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
    runs_store = RunStore(store, create=False)
    if run:
        run_ids = [runs_store.resolve_id(prefix) for prefix in run]
    else:
        run_ids = [r.id for r in runs_store.list_runs(study=study)]
    if csv_path == "-":
        runs_store.export_csv(sys.stdout, run_ids)
        return
    count = runs_store.export_csv(csv_path, run_ids)
    print(f"wrote {count} metric rows of {len(run_ids)} runs to {csv_path}")


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
