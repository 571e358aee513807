"""Seed 004: every MTL method on one benchmark, at parameter and feature level, with the challenge measures.

Each (seed, method, level) is one cell. Every `measures.every` steps a cell records GDS and GMS (from the
parameter-level task gradients) and FD (from the feature-level ones) as `challenge/<measure>`. The report
holds test performance per method relative to equal weighting (Tables 1-3 layout), feature level relative to
parameter level (Table 4), the measures' trajectories relative to the baseline (Figs. 3-5) and the ranking
similarity of each measure with test performance (Tables 5-7), each beside the paper's.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from mtlens.config import Section
from mtlens.data.base import FactorDataset
from mtlens.errors import MtlensError
from mtlens.measures.challenge_callback import ChallengeRecorder
from mtlens.methods import METHODS, available_methods
from mtlens.models import create_model
from mtlens.studies.base import StudyConfig
from mtlens.studies.common import (DataConfig, ModelConfig, build_method, build_task_data, cell_train_config,
                                   check_data, seed_everything)
from mtlens.studies.engine import Cell, CellContext, Study
from mtlens.studies.registry import STUDIES
from mtlens.training import Trainer


class MethodsConfig(Section):
    """Which methods to compare (equal weighting is the baseline), at which levels, with per-method `options`."""

    names: list[str] = Field(default_factory=available_methods, min_length=1)
    levels: list[Literal["param", "feature"]] = Field(default_factory=lambda: ["param", "feature"], min_length=1)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)


class MeasuresConfig(Section):
    """Which challenge measures to record, how often (seed 004 used every 10 steps), and the RS window."""

    every: int = Field(10, ge=1)
    which: list[Literal["gds", "gms", "fd"]] = Field(default_factory=lambda: ["gds", "gms", "fd"])
    last: int = Field(50, ge=1)


class BalancingConfig(StudyConfig):
    """The balancing study's config (presets: mtlens/configs/balancing/*.yaml)."""

    study: Literal["balancing"] = "balancing"
    methods: MethodsConfig = Field(default_factory=MethodsConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    measures: MeasuresConfig = Field(default_factory=MeasuresConfig)

    cell_fields: ClassVar[frozenset[str]] = frozenset({"methods"})


def _levels_for(name: str, levels: list[str]) -> list[str]:
    # Feature level changes only methods that use per-task gradients; a loss weighting is the same update at
    # both levels, so it runs once, at parameter level (equal weighting is the baseline of every level).
    cls = METHODS.get(name)
    if getattr(cls, "uses_gradients", False):
        return [lv for lv in levels if lv in cls.levels]
    return ["param"]


def _names(cfg: BalancingConfig) -> list[str]:
    names = [METHODS.canonical(m) for m in cfg.methods.names]
    if "ew" not in names:
        raise MtlensError("the balancing study compares every method with equal weighting; add 'ew' to methods.names")
    return ["ew"] + [n for n in dict.fromkeys(names) if n != "ew"]


def cells(cfg: BalancingConfig) -> list[Cell]:
    """Returns one cell per (seed, method, level), equal weighting first."""
    options = {METHODS.canonical(k): v for k, v in cfg.methods.options.items()}
    return [Cell(s, {"method": n, "level": lv, "options": options.get(n, {})}, f"seed{s}/{n}/{lv}")
            for s in cfg.seeds for n in _names(cfg) for lv in _levels_for(n, list(cfg.methods.levels))]


def check(cfg: BalancingConfig) -> None:
    """Raises one line for an unknown method or option, a missing baseline, or too short a run for `measures.last`."""
    names = _names(cfg)
    for key in cfg.methods.options:
        if METHODS.canonical(key) not in names:
            raise MtlensError(f"methods.options names {key!r}, which is not among methods.names")
    dataset, n_train = check_data(cfg.data, cfg.data_dir, factors=False)
    n_tasks = cfg.data.n_tasks if isinstance(dataset, FactorDataset) else len(dataset.tasks)
    for cell in cells(cfg.model_copy(update={"seeds": cfg.seeds[:1]})):
        build_method(cell.params["method"], n_tasks, cell.params["level"], dict(cell.params["options"]))
    steps = cfg.train.epochs * -(-n_train // cfg.train.batch_size)
    recorded = -(-steps // cfg.measures.every)
    if recorded < cfg.measures.last:
        raise MtlensError(f"each run records {recorded} values per measure ({steps} steps, every "
                          f"{cfg.measures.every}), fewer than measures.last={cfg.measures.last}; lower measures.every "
                          "or measures.last, or train longer")


def run_cell(cfg: BalancingConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Trains one method at one level for one seed, recording the challenge measures; returns final test values."""
    data = ctx.cached(["task_data", cfg.data_dir, cfg.data.model_dump(mode="json")],
                      lambda: build_task_data(cfg.data, cfg.data_dir))
    ctx.note("data_source", f"{data.name}: {data.source}")
    ctx.note("tasks", [[t.name, t.kind] for t in data.tasks])
    seed_everything(cell.seed)
    model = create_model("multi_head", data.tasks, data.input_shape, **cfg.model.kwargs())
    p = cell.params
    method = build_method(p["method"], len(data.tasks), p["level"], dict(p["options"]))
    recorder = ChallengeRecorder(every=cfg.measures.every, measures=cfg.measures.which, prefix="challenge/")
    trainer = Trainer(model, method, data.splits, cell_train_config(cfg.train, cell.seed), store=ctx.sink,
                      run_id=ctx.run_id, checkpoint_dir=ctx.artifacts, callbacks=[recorder])
    return trainer.fit(resume=ctx.resume)


def report(cfg: BalancingConfig, runs: list[Any], rep: Any) -> None:
    """Tables 1-7 layouts beside the published ones, and the measures' trajectories relative to the baseline."""
    from mtlens.plots.balancing import fill_report

    fill_report(cfg, runs, rep)


def method_overrides(name: str | None, level: str | None) -> list[str]:
    """Returns the overrides of `--method NAME --method-level LEVEL`: NAME against the equal-weighting baseline."""
    return ([f"methods.names=[ew, {name}]"] if name else []) + ([f"methods.levels=[{level}]"] if level else [])


STUDIES.add(Study("balancing", BalancingConfig, cells, run_cell, report,
                  title="MTL methods and the challenge measures (seed 004)", published="seed004",
                  check=check, method_overrides=method_overrides))
