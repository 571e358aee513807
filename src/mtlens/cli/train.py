"""`mtlens train`: run a study from a YAML config, with overrides, resuming killed runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def train(
    config: Path = typer.Option(..., "--config", "-c", help="Study config (YAML), e.g. configs/hard_sharing/quick.yaml."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set train.epochs=5 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Skip finished runs and continue killed ones from their checkpoints."),
    method: Optional[str] = typer.Option(None, "--method", help="MTL method name (see `mtlens methods`)."),
    method_level: Optional[str] = typer.Option(None, "--method-level", help="param or feature."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the official data files (else $MTLENS_DATA)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Run store file (default from the config: runs/mtlens.sqlite)."),
) -> None:
    """Train the runs of a study and write its report."""
    from mtlens.studies import load_study_config, run_study

    overrides = list(set_)
    if method is not None:
        overrides.append(f"method.name={method}")
    if method_level is not None:
        overrides.append(f"method.level={method_level}")
    if data_dir is not None:
        overrides.append(f"data.data_dir={data_dir}")
    if store is not None:
        overrides.append(f"store={store}")
    cfg = load_study_config(config, overrides)
    result = run_study(cfg, resume=resume)
    failed = [r for r in result.records if r.status != "finished"]
    print(f"{len(result.records) - len(failed)} runs finished, {len(failed)} failed; report in {result.report_dir}")
    if failed:
        raise typer.Exit(1)
