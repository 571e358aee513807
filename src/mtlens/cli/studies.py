"""`mtlens reproduce`, `mtlens sweep`, `mtlens report`: run the seed papers' studies on the engine.

Every command that trains takes the same engine options (`--backend serial|pool|ray`, `--workers`,
`--threads`, `--address`, `--quiet`), skips finished cells, resumes killed ones, and prints where the report is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

# The engine options every training command takes, declared once.
Backend = Annotated[str, typer.Option("--backend", help="Where cells run: pool (local processes), serial (this process) or ray.")]
Workers = Annotated[Optional[int], typer.Option("--workers", help="Parallel cells (default: cores / threads).")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="Torch threads per worker (default: cores / workers).")]
Address = Annotated[Optional[str], typer.Option("--address", help="Ray cluster address (host:port); a local instance otherwise.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
Sets = Annotated[list[str], typer.Option("--set", help="Override a config key: --set train.epochs=5 (repeatable).")]


def engine_options(backend: str, workers: Optional[int], threads: Optional[int], address: Optional[str],
                   quiet: bool) -> dict[str, Any]:
    """Returns the engine keyword arguments of the shared options."""
    return {"backend": backend, "workers": workers, "threads": threads, "address": address, "display": not quiet}


def finish(result: Any) -> None:
    """Prints the cell counts and the report path; exits 1 when a cell failed (the report lists why)."""
    print(f"{result.finished} cells finished, {result.failed} failed, {result.skipped} already finished; "
          f"report: {result.report_html}")
    if result.failed:
        raise typer.Exit(1)


def reproduce(
    study: Optional[str] = typer.Argument(None, help="Study to run (see --list), e.g. hard-sharing."),
    preset: str = typer.Option("quick", "--preset", "-p", help="quick (a laptop CPU, minutes) or paper (the papers' settings)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Run seeds 0..N-1 instead of the preset's."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the official data files (else $MTLENS_DATA)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Run store file (default runs/mtlens.sqlite)."),
    set_: Sets = [],
    list_: bool = typer.Option(False, "--list", help="List the studies, their presets and expected wall times."),
    backend: Backend = "pool", workers: Workers = None, threads: Threads = None, address: Address = None,
    quiet: Quiet = False,
) -> None:
    """Reproduce a seed paper's study from a shipped preset; prints where the report is."""
    from mtlens.errors import MtlensError
    from mtlens.studies import reproduce as run

    if list_:
        _list()
        return
    if study is None:
        raise MtlensError("name a study (e.g. `mtlens reproduce hard-sharing --preset quick`) or pass --list")
    extra = [f"store={store}"] if store is not None else []
    finish(run(study, preset, seeds=seeds, data_dir=None if data_dir is None else str(data_dir),
               overrides=[*extra, *set_], **engine_options(backend, workers, threads, address, quiet)))


def _list() -> None:
    from rich.console import Console
    from rich.table import Table

    from mtlens.studies import STUDIES, load_study_config
    from mtlens.studies import presets

    walls = presets.wall_times()
    table = Table("study", "preset", "seeds", "cells", "expected wall time")
    for name in STUDIES.available():
        for preset in presets.names(name):
            cfg = load_study_config(f"{name}/{preset}")
            table.add_row(name.replace("_", "-"), preset, str(len(cfg.seeds)), str(len(STUDIES.get(name).cells(cfg))),
                          presets.describe_wall(walls.get(name, {}).get(preset)))
    Console(width=160).print(table)


def sweep(
    config: str = typer.Argument(..., help="Study config: a YAML file or a preset STUDY/PRESET (hard_sharing/quick)."),
    grid: list[str] = typer.Option([], "--grid", help="key=v1,v2: sweep a config key over values (repeatable)."),
    set_: Sets = [],
    backend: Backend = "pool", workers: Workers = None, threads: Threads = None, address: Address = None,
    quiet: Quiet = False,
) -> None:
    """Sweep a study over a grid of config values, on the same cells and backends; one report per grid point."""
    from mtlens.studies import sweep as run

    finish(run(config, grid, set_, **engine_options(backend, workers, threads, address, quiet)))


def report(
    target: str = typer.Argument(..., help="A study (hard-sharing) or a run id (its study's report)."),
    preset: str = typer.Option("quick", "--preset", "-p", help="The study's preset whose runs to report."),
    store: Optional[Path] = typer.Option(None, "--store", help="Run store file (default runs/mtlens.sqlite)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default reports/<study>_<preset> next to the store)."),
    set_: Sets = [],
) -> None:
    """Re-render a study's report from the run store, without training."""
    from mtlens.studies import report as render

    path = render(target, preset=preset, store=None if store is None else str(store),
                  out=None if out is None else str(out), overrides=set_)
    print(f"report: {path}")
