"""Reports from the store alone: gather a study's runs, let the study fill the report, add failures and provenance.

A study config's runs are found by the hash of its base config (every stored run config is that base plus
the cell's params), so `mtlens report` needs no training and no data: a preset or one run id is enough.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mtlens.config import to_yaml
from mtlens.errors import MtlensError
from mtlens.plots.report import Report
from mtlens.runs import RunStore
from mtlens.runs.records import Run
from mtlens.studies.base import StudyConfig, base_config, base_hash
from mtlens.studies.engine import Cell
from mtlens.studies.registry import STUDIES


@dataclass
class CellRun:
    """A planned cell and its run in the store (status 'not run' when it has none)."""

    cell: Cell
    run: Run | None
    store: RunStore = field(repr=False)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.cell.params)

    @property
    def seed(self) -> int:
        return self.cell.seed

    @property
    def status(self) -> str:
        return self.run.status if self.run is not None else "not run"

    @property
    def summary(self) -> dict[str, float]:
        return self.run.summary if self.run is not None and self.run.status == "finished" else {}

    @cached_property
    def notes(self) -> dict[str, Any]:
        """Returns what the cell noted (data source, tasks, device, versions), from its cell.json."""
        if self.run is None:
            return {}
        path = self.run.artifacts_dir / "cell.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def series(self) -> dict[str, list[tuple[int, float]]]:
        """Returns every metric the cell logged as (step, value) lists."""
        return self.store.series(self.run.id) if self.run is not None else {}


def published(name: str | None) -> dict[str, Any]:
    """Returns the published-numbers data `mtlens/configs/published/<name>.yaml` ({} for None)."""
    if name is None:
        return {}
    return yaml.safe_load(resources.files("mtlens").joinpath("configs", "published", f"{name}.yaml").read_text("utf-8"))


def collect(store: RunStore, study: str, cells: Sequence[tuple[Cell, str]]) -> list[CellRun]:
    """Returns each planned (cell, run-config hash) with its newest finished run, else its newest run."""
    best: dict[tuple[str, int], Run] = {}
    for run in store.list_runs(study=study):
        key = (run.config_hash, run.seed)
        if key not in best or best[key].status != "finished" or run.status == "finished":
            best[key] = run
    return [CellRun(cell, best.get((h, cell.seed)), store) for cell, h in cells]


def cells_of_run(store: RunStore, run_id: str) -> tuple[Any, list[tuple[Cell, str]], str]:
    """Returns (the study config, every stored cell sharing its base, its preset) for one run id."""
    from mtlens.runs.ids import config_hash

    run = store.get_run(store.resolve_id(run_id))
    if "cell" not in run.config:
        raise MtlensError(f"run {run.id} was not made by the study engine (no cell in its config); train it again")
    study = STUDIES.get(run.study)
    digest = base_hash(run.config)
    cells = [(Cell(r.seed, r.config["cell"], r.name or r.id), r.config_hash) for r in store.list_runs(study=run.study)
             if "cell" in r.config and base_hash(r.config) == digest]
    cells = list(dict(((h, c.seed), (c, h)) for c, h in cells).values())
    preset = CellRun(cells[0][0], run, store).notes.get("preset", "custom")
    base = {k: v for k, v in run.config.items() if k != "cell"}
    cfg = STUDIES.validate({**base, "preset": preset, "store": str(store.path),
                            "seeds": sorted({c.seed for c, _ in cells})}, origin=f"run {run.id}")
    assert config_hash(base_config(cfg)) == digest, "a stored base config does not round-trip through its model"
    return cfg, cells, preset


def write_report(cfg: StudyConfig, store: RunStore, cells: Sequence[tuple[Cell, str]]) -> Path:
    """Builds the study's report from the store (its tables and figures, failures, provenance); returns the HTML."""
    study = STUDIES.get(cfg.study)
    runs = collect(store, study.name, cells)
    rep = Report(study.title, published=published(study.published))
    study.report(cfg, runs, rep)
    rep.failures = [f"{r.cell.name} (run {r.run.id}): {r.run.error}" for r in runs
                    if r.run is not None and r.status == "failed"]
    rep.failures += [f"{r.cell.name}: {r.status}" for r in runs if r.status not in ("finished", "failed")]
    rep.provenance = provenance_rows(cfg, runs)
    rep.config_yaml = to_yaml(cfg)
    return rep.write(cfg.report_path())


def _distinct(values: Sequence[Any]) -> str:
    seen = list(dict.fromkeys(str(v) for v in values if v not in (None, "")))
    return "; ".join(seen) if seen else "unknown"


def provenance_rows(cfg: StudyConfig, runs: Sequence[CellRun]) -> list[tuple[str, str]]:
    """Returns (what, value) rows: data source, preset, seeds, cells, versions, commit, wall time, device."""
    done = [r for r in runs if r.run is not None]
    counts = {s: sum(r.status == s for r in runs) for s in dict.fromkeys(r.status for r in runs)}
    wall = sum(r.run.timings.wall_seconds for r in done)
    starts = [r.run.timings.started_at for r in done if r.run.timings.started_at]
    ends = [r.run.timings.finished_at for r in done if r.run.timings.finished_at]
    span = f"; {max(ends) - min(starts):.0f} s from the first cell's start to the last one's end" if starts and ends else ""
    versions = next((r.notes["versions"] for r in done if "versions" in r.notes), {})
    devices = [f"{r.notes.get('device', '?')} x {r.notes.get('threads', '?')} threads on {r.notes.get('host', '?')} "
               f"({r.notes.get('cores', '?')} cores)" for r in done if r.notes]
    return [
        ("study", f"{cfg.study} (preset {cfg.preset})"),
        ("data source", _distinct([r.notes.get("data_source") for r in done])),
        ("seeds", ", ".join(str(s) for s in sorted({r.seed for r in runs}))),
        ("cells", ", ".join(f"{n} {s}" for s, n in counts.items())),
        ("package versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "unknown"),
        ("commit", _distinct([r.notes.get("commit") for r in done])),
        ("wall time", f"{wall:.0f} s of cell time{span}"),
        ("device", _distinct(devices)),
        ("run store", str(Path(cfg.store))),
        ("written", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
