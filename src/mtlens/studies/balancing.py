"""Seed 004: every MTL method on one benchmark, at parameter and feature level, with the challenge measures.

Each (seed, method, level) is one run. Every `measures.every` steps the run records GDS and GMS (from the
parameter-level task gradients) and FD (from the feature-level ones) as `challenge/<measure>`. The report
holds test performance per method relative to equal weighting (Tables 1-3 layout), feature level relative to
parameter level (Table 4), the measures' trajectories relative to the baseline (Figs. 3-5) and the ranking
similarity of each measure with test performance (Tables 5-7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from mtlens.config import Section
from mtlens.errors import MtlensError
from mtlens.measures.challenge_callback import ChallengeRecorder
from mtlens.methods import METHODS, available_methods
from mtlens.models import create_model
from mtlens.runs import RunStore
from mtlens.studies.common import (DataConfig, ModelConfig, TrainSection, artifacts_root, build_task_data,
                                   open_or_resume, seed_everything)
from mtlens.studies.registry import STUDIES
from mtlens.training import NonFiniteLoss, Trainer


class MeasuresConfig(Section):
    """Which challenge measures to record, how often (seed 004 used every 10 steps), and the RS window."""

    every: int = Field(10, ge=1)
    which: list[Literal["gds", "gms", "fd"]] = Field(default_factory=lambda: ["gds", "gms", "fd"])
    last: int = Field(50, ge=1)


class BalancingConfig(Section):
    """The balancing study's config (configs/balancing/*.yaml)."""

    study: Literal["balancing"] = "balancing"
    preset: str = "custom"
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    methods: list[str] = Field(default_factory=available_methods, min_length=1)
    levels: list[Literal["param", "feature"]] = Field(default_factory=lambda: ["param", "feature"], min_length=1)
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    measures: MeasuresConfig = Field(default_factory=MeasuresConfig)
    store: str = "runs/mtlens.sqlite"
    report_dir: str | None = None


@dataclass
class MethodRun:
    """One trained (seed, method, level): run id, status, final test values, recorded measure trajectories."""

    run_id: str
    seed: int
    method: str
    level: str
    status: str
    values: dict[str, float] = field(default_factory=dict)
    trajectories: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


@dataclass
class BalancingResult:
    study: str
    records: list[MethodRun]
    report_dir: Path | None = None


def _levels_for(name: str, levels: list[str]) -> list[str]:
    # Feature level changes only methods that use per-task gradients; loss weighting would just repeat itself.
    cls = METHODS.get(name)
    if getattr(cls, "uses_gradients", False):
        return [lv for lv in levels if lv in cls.levels]
    return ["param"] if "param" in levels else []


def plan(cfg: BalancingConfig) -> list[tuple[int, str, str]]:
    """Returns the (seed, method, level) runs of the study, equal weighting first."""
    names = [METHODS.canonical(m) for m in cfg.methods]
    if "ew" not in names:
        raise MtlensError("the balancing study compares every method with equal weighting; add 'ew' to methods")
    names = ["ew"] + [n for n in dict.fromkeys(names) if n != "ew"]
    return [(s, n, lv) for s in cfg.seeds for n in names for lv in _levels_for(n, list(cfg.levels))]


def _run_config(cfg: BalancingConfig, method: str, level: str) -> dict[str, Any]:
    body = cfg.model_dump(mode="json", include={"data", "model", "train", "measures"})
    body["train"].pop("progress", None)
    body["method"] = {"name": method, "level": level, "options": cfg.method_options.get(method, {})}
    return body


def run_balancing(cfg: BalancingConfig, *, resume: bool = False) -> BalancingResult:
    """Trains every planned (seed, method, level); returns the runs and writes the report."""
    data = build_task_data(cfg.data)
    steps = cfg.train.epochs * -(-len(data.splits["train"]) // cfg.train.batch_size)
    recorded = -(-steps // cfg.measures.every)
    if recorded < cfg.measures.last:
        raise MtlensError(f"each run records {recorded} values per measure ({steps} steps, every "
                          f"{cfg.measures.every}), fewer than measures.last={cfg.measures.last}; lower measures.every "
                          "or measures.last, or train longer")
    store = RunStore(cfg.store)
    records = []
    for seed, method_name, level in plan(cfg):
        run, done = open_or_resume(store, cfg.study, _run_config(cfg, method_name, level), seed,
                                   f"seed{seed}/{method_name}/{level}", resume)
        if not done:
            seed_everything(seed)
            model = create_model("multi_head", data.tasks, data.input_shape, latent_dim=cfg.model.latent_dim,
                                 activation=cfg.model.activation, head_hidden=cfg.model.head_hidden,
                                 head_activation=cfg.model.head_activation)
            options = dict(cfg.method_options.get(method_name, {}))
            method = METHODS.create(method_name, len(data.tasks), level=level, **options)
            recorder = ChallengeRecorder(every=cfg.measures.every, measures=cfg.measures.which, prefix="challenge/")
            store.start(run.id)
            trainer = Trainer(model, method, data.splits, cfg.train.to_train_config(seed), store=store, run_id=run.id,
                              checkpoint_dir=store.artifacts_dir(run.id), callbacks=[recorder])
            try:
                values = trainer.fit(resume=resume)
            except NonFiniteLoss:
                records.append(MethodRun(run.id, seed, method_name, level, "failed"))
                continue
            except BaseException:
                store.mark_interrupted(run.id)
                raise
            store.finish(run.id, values)
        series = store.series(run.id)
        trajectories = {m: series.get(f"challenge/{m}", []) for m in cfg.measures.which}
        records.append(MethodRun(run.id, seed, method_name, level, "finished", store.summary(run.id), trajectories))
    report_dir = Path(cfg.report_dir) if cfg.report_dir else artifacts_root(cfg.store) / f"{cfg.study}_{cfg.preset}"
    from mtlens.plots.balancing import write_balancing_report

    write_balancing_report(records, data.tasks, report_dir, last=cfg.measures.last,
                           title=f"MTL methods on {data.name} ({data.source})")
    return BalancingResult(cfg.study, records, report_dir)


STUDIES.add("balancing", run_balancing, config=BalancingConfig)
