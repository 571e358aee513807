"""`mtlens eval RUN_ID`: disentanglement metrics of a trained run's encoder, stored with the run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def eval_run(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix), see `mtlens runs list`."),
    metrics: str = typer.Option("mig,factor_vae,sap,dci", "--metrics", help="Comma-separated metric names."),
    seed: int = typer.Option(0, "--seed", help="Seed of the metrics' sampling (disentanglement_lib's protocol)."),
    setting: list[str] = typer.Option([], "--setting", help="Per-metric setting: --setting mig.num_train=1000."),
    store: Path = typer.Option(Path("runs/mtlens.sqlite"), "--store", help="Run store file."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the official data files."),
) -> None:
    """Compute disentanglement metrics for a run's encoder and store them in the run store."""
    from rich.console import Console
    from rich.table import Table

    from mtlens.config import apply_overrides
    from mtlens.runs import RunStore
    from mtlens.studies.evaluation import evaluate_run

    settings = apply_overrides({}, setting)
    runs = RunStore(store, create=False)
    full_id = runs.resolve_id(run_id)
    scores = evaluate_run(runs, full_id, [m for m in metrics.split(",") if m.strip()], seed=seed, settings=settings,
                          data_dir=None if data_dir is None else str(data_dir))
    table = Table("metric", "value", title=f"run {full_id}")
    for name, value in scores.items():
        table.add_row(name, f"{value:.4f}")
    Console().print(table)
