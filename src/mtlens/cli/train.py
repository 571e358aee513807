"""`mtlens train`: run a study from a YAML config or preset, with overrides, on the engine.

Finished cells are skipped and killed ones resume from their checkpoints: running the same command again
continues a study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mtlens.cli.studies import Address, Backend, Quiet, Sets, Threads, Workers, engine_options, finish


def train(
    config: str = typer.Option(..., "--config", "-c", help="Study config: a YAML file, or a preset STUDY/PRESET (hard_sharing/quick)."),
    set_: Sets = [],
    method: Optional[str] = typer.Option(None, "--method", help="MTL method name (see `mtlens methods`)."),
    method_level: Optional[str] = typer.Option(None, "--method-level", help="param or feature."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the official data files (else $MTLENS_DATA)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Run store file (default from the config: runs/mtlens.sqlite)."),
    backend: Backend = "pool", workers: Workers = None, threads: Threads = None, address: Address = None,
    quiet: Quiet = False,
) -> None:
    """Train the cells of a study and write its report."""
    from mtlens.errors import MtlensError
    from mtlens.studies import STUDIES, load_study_config, run_study
    from mtlens.studies.registry import read_source

    overrides = list(set_)
    if method is not None or method_level is not None:
        data, _ = read_source(config)
        study = STUDIES.get(str(data.get("study", "")))
        if study.method_overrides is None:
            raise MtlensError(f"study {study.name} has no --method; set its method keys with --set")
        overrides = study.method_overrides(method, method_level) + overrides
    if data_dir is not None:
        overrides.append(f"data_dir={data_dir}")
    if store is not None:
        overrides.append(f"store={store}")
    cfg = load_study_config(config, overrides)
    finish(run_study(cfg, **engine_options(backend, workers, threads, address, quiet)))
