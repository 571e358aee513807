"""Seed 000 §4.1: hard parameter sharing on a factor dataset with random-MLP tasks.

For each seed: a multi-head model, a one-head model, a single-task model per task (the multi-head model
trained on one task's loss) and a random encoder (frozen at its initialisation; its heads are fitted as a
probe, so its per-task test MSE says what an untrained representation supports); and, when listed in
`variants`, the soft-sharing architectures of LibMTL (cross_stitch, mmoe, mtan, cgc, ple, dselect_k) and LTB,
built on the same encoder and heads, whose codes (`encode`, see `mtlens.models.soft_sharing`) are scored
like the hard-sharing encoders' latents. Each is one cell; the
report holds the per-task test MSE per variant (the data behind seed 000 Fig. 13) and, when `metrics.names`
are listed, the disentanglement metrics of every encoder in the layout of Table 5 beside the published ones.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from mtlens.config import Section
from mtlens.errors import MtlensError
from mtlens.methods import METHODS
from mtlens.data.tasks import TaskSpec
from mtlens.models import check_method_fits, create_model
from mtlens.studies.base import StudyConfig
from mtlens.studies.common import (DataConfig, MethodConfig, ModelConfig, build_factor_data, build_method,
                                   cell_train_config, check_data, seed_everything)
from mtlens.studies.engine import Cell, CellContext, Study
from mtlens.studies.evaluation import check_metrics, encoder_scores
from mtlens.studies.registry import STUDIES
from mtlens.training import Trainer

Variant = Literal["multi_head", "one_head", "single_task", "random",
                  "cross_stitch", "mmoe", "mtan", "cgc", "ple", "dselect_k", "ltb"]


class MetricsConfig(Section):
    """The disentanglement metrics of every trained encoder, with per-metric `options` (e.g. num_train)."""

    names: list[str] = Field(default_factory=list)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)


class HardSharingConfig(StudyConfig):
    """The hard-sharing study's config (presets: mtlens/configs/hard_sharing/*.yaml)."""

    study: Literal["hard_sharing"] = "hard_sharing"
    variants: list[Variant] = Field(default_factory=lambda: ["multi_head", "one_head", "single_task", "random"],
                                    min_length=1)
    single_tasks: list[int] | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    cell_fields: ClassVar[frozenset[str]] = frozenset({"variants", "single_tasks"})


def _single_tasks(cfg: HardSharingConfig) -> list[int]:
    return cfg.single_tasks if cfg.single_tasks is not None else list(range(cfg.data.n_tasks))


def check(cfg: HardSharingConfig) -> None:
    """Raises one line for what the types cannot catch: task indices, metric names and options, method options,
    and a method whose assumptions a variant's architecture breaks (`check_method_fits`)."""
    bad = [t for t in _single_tasks(cfg) if not 0 <= t < cfg.data.n_tasks]
    if bad:
        raise MtlensError(f"single_tasks {bad} are not task indices 0..{cfg.data.n_tasks - 1}")
    check_metrics(cfg.metrics.names, cfg.metrics.options)
    if "random" in cfg.variants and getattr(METHODS.get(cfg.method.name), "uses_gradients", False):
        raise MtlensError(f"the random variant's encoder is frozen, and {cfg.method.name} needs the task gradients of "
                          "trainable shared parameters; drop random from variants or use a loss weighting (e.g. ew)")
    for n_active in {1 if v == "single_task" else cfg.data.n_tasks for v in cfg.variants}:
        cfg.method.build(n_active)
    dataset, _ = check_data(cfg.data, cfg.data_dir, factors=True)  # dataset, options, subset and split fractions
    tasks = [TaskSpec(f"task_{t}", "regression") for t in range(cfg.data.n_tasks)]  # the kinds change no assumption
    for variant in dict.fromkeys(cfg.variants):
        model = create_model(variant, tasks, dataset.image_shape, **cfg.model.kwargs(),  # type: ignore[attr-defined]
                             **({"task": 0} if variant == "single_task" else {}))
        check_method_fits(model, cfg.method.build(len(model.active_tasks)))


def cells(cfg: HardSharingConfig) -> list[Cell]:
    """Returns one cell per seed and variant (and trained task, for the single-task models)."""
    out = []
    for seed in cfg.seeds:
        for variant in cfg.variants:
            for task in _single_tasks(cfg) if variant == "single_task" else [None]:
                name = f"seed{seed}/{variant}" + ("" if task is None else f"/task_{task}")
                out.append(Cell(seed, {"variant": variant, "task": task}, name))
    return out


def run_cell(cfg: HardSharingConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Trains one variant for one seed (then scores its encoder); returns the final test values and scores."""
    dataset, task_set, data = ctx.cached(["factor_data", cfg.data_dir, cfg.data.model_dump(mode="json")],
                                         lambda: build_factor_data(cfg.data, cfg.data_dir))
    ctx.note("data_source", f"{dataset.name}: {dataset.source}")
    ctx.note("tasks", [[t.name, t.kind] for t in task_set.tasks])
    variant, task = cell.params["variant"], cell.params["task"]
    seed_everything(cell.seed)
    model = create_model(variant, task_set.tasks, dataset.image_shape, **cfg.model.kwargs(),
                         **({"task": task} if variant == "single_task" else {}))
    method = build_method(cfg.method.name, len(model.active_tasks), cfg.method.level, cfg.method.options)
    trainer = Trainer(model, method, data, cell_train_config(cfg.train, cell.seed), store=ctx.sink,
                      run_id=ctx.run_id, checkpoint_dir=ctx.artifacts)
    values = trainer.fit(resume=ctx.resume)
    if cfg.metrics.names:
        scores = encoder_scores(dataset, model, cfg.metrics.names, seed=cell.seed, settings=cfg.metrics.options,
                                device=cfg.train.device)
        ctx.sink.log_metrics(ctx.run_id, trainer.global_step, scores)
        values.update(scores)
    return values


def report(cfg: HardSharingConfig, runs: list[Any], rep: Any) -> None:
    """Per-task test MSE per variant (Fig. 13 data) and Table 5's metrics beside the published ones."""
    from mtlens.plots.hard_sharing import fill_report

    fill_report(cfg, runs, rep)


def method_overrides(name: str | None, level: str | None) -> list[str]:
    """Returns the overrides of `--method NAME --method-level LEVEL`: the method every variant trains with."""
    return ([f"method.name={name}"] if name else []) + ([f"method.level={level}"] if level else [])


STUDIES.add(Study("hard_sharing", HardSharingConfig, cells, run_cell, report,
                  title="Hard parameter sharing and disentanglement (seed 000 §4.1)", published="seed000",
                  check=check, method_overrides=method_overrides))
