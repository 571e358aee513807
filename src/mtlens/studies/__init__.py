"""The studies of the seed papers, on one engine (the contract for authors: mtlens/studies/engine.py).

    from mtlens.studies import load_study_config, run_study
    cfg = load_study_config("hard_sharing/quick", ["train.epochs=1"])   # a shipped preset, or a YAML path
    result = run_study(cfg, backend="serial")       # cells, store, report
    print(result.report_html)

`reproduce("hard_sharing", "quick")` runs a shipped preset, `sweep(config, ["train.lr=1e-3,1e-4"])` a grid,
`report("hard_sharing")` or `report(RUN_ID)` re-renders a report from the store alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlens.errors import MtlensError
from mtlens.studies import balancing, filters, hard_sharing, ordering  # noqa: F401  (registers)
from mtlens.studies.representation import autoencoders_study, decoding_study, geometry_study  # noqa: F401  (registers)
from mtlens.studies.registry import STUDIES, available_studies, read_source
from mtlens.studies.runner import EngineResult, run_study_configs


def load_study_config(source: str | Path, overrides: Sequence[str] = ()) -> Any:
    """Returns the validated config in a YAML file or shipped preset (`hard_sharing/quick`), with overrides."""
    return STUDIES.load(source, overrides)


def run_study(config: Any, **engine: Any) -> EngineResult:
    """Runs every unfinished cell of a study config and writes its report; returns the counts and report path.

    `engine` takes backend ('pool' default, 'serial', 'ray'), workers, threads, address and display.
    """
    return run_study_configs([config], **engine)


def reproduce(study: str, preset: str = "quick", *, seeds: int | None = None, data_dir: str | None = None,
              overrides: Sequence[str] = (), **engine: Any) -> EngineResult:
    """Runs a shipped preset (`seeds=N` runs seeds 0..N-1); returns the counts and report path."""
    extra = ([f"seeds={list(range(seeds))}"] if seeds is not None else []) + (
        [f"data_dir={data_dir}"] if data_dir is not None else [])
    cfg = load_study_config(f"{STUDIES.get(study).name}/{preset}", [*extra, *overrides])
    return run_study(cfg, title=f"{cfg.study} ({preset})", **engine)


def sweep(source: str | Path, grid: Sequence[str], overrides: Sequence[str] = (), **engine: Any) -> EngineResult:
    """Runs every cell of every grid point (`key=v1,v2` items), then each point's report and an index."""
    from mtlens.config import apply_overrides
    from mtlens.studies.reporting import collect
    from mtlens.studies.runner import plan
    from mtlens.studies.grid import expand, parse_grid, write_index

    parsed = parse_grid(grid)
    data, origin = read_source(source)
    configs, labels = expand(apply_overrides(data, overrides), parsed, origin)
    result = run_study_configs(configs, labels=labels, title=f"sweep of {configs[0].study}", **engine)
    from mtlens.runs import RunStore

    store = RunStore(configs[0].store)
    counts = []
    for i, cfg in enumerate(configs):
        runs = collect(store, cfg.study, [(j.cell, j.hash) for j in plan([cfg])])
        counts.append(", ".join(f"{sum(r.status == s for r in runs)} {s}" for s in dict.fromkeys(r.status for r in runs)))
    result.reports.insert(0, write_index(configs, labels, result.reports, counts))
    return result


def report(target: str, *, preset: str = "quick", store: str | None = None, out: str | None = None,
           overrides: Sequence[str] = ()) -> Path:
    """Re-renders a report from the store only: of a study's preset config, or of the study a run id belongs to."""
    from mtlens.runs import DEFAULT_STORE, RunStore
    from mtlens.studies.reporting import cells_of_run, write_report
    from mtlens.studies.runner import plan

    store_path = Path(store) if store is not None else None
    key = target.replace("-", "_")
    if key in STUDIES.available():
        extra = ([f"store={store_path}"] if store_path else []) + ([f"report_dir={out}"] if out else [])
        cfg = load_study_config(f"{key}/{preset}", [*extra, *overrides])
        runs = RunStore(cfg.store, create=False)
        return write_report(cfg, runs, [(j.cell, j.hash) for j in plan([cfg])])
    runs = RunStore(store_path or DEFAULT_STORE, create=False)
    try:
        cfg, cells, _ = cells_of_run(runs, target)
    except MtlensError:
        raise MtlensError(f"{target!r} is neither a study ({', '.join(STUDIES.available())}) nor a run id in "
                          f"{runs.path}; `mtlens runs list` shows the ids") from None
    if out:
        cfg = cfg.model_copy(update={"report_dir": out})
    return write_report(cfg, runs, cells)


__all__ = ["STUDIES", "EngineResult", "available_studies", "load_study_config", "report", "reproduce", "run_study",
           "sweep"]
