"""Seed 000 §4.1: hard parameter sharing on a factor dataset with random-MLP tasks.

For each seed: a multi-head model, a one-head model, a single-task model per task (the multi-head model
trained on one task's loss) and a random encoder (frozen at its initialisation; its heads are fitted as a
probe, so its per-task test MSE says what an untrained representation supports). Each is one run in the
store; the report holds the per-task test MSE per variant (the data behind seed 000 Fig. 13) and, when
`metrics` are listed, the disentanglement metrics of every encoder (Fig. 3, Table 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from mtlens.config import Section
from mtlens.errors import MtlensError
from mtlens.models import create_model
from mtlens.runs import RunStore
from mtlens.studies.common import (DataConfig, MethodConfig, ModelConfig, TrainSection, artifacts_root,
                                   build_factor_data, open_or_resume, seed_everything)
from mtlens.studies.evaluation import encoder_scores
from mtlens.studies.registry import STUDIES
from mtlens.training import NonFiniteLoss, Trainer

Variant = Literal["multi_head", "one_head", "single_task", "random"]


class HardSharingConfig(Section):
    """The hard-sharing study's config (configs/hard_sharing/*.yaml)."""

    study: Literal["hard_sharing"] = "hard_sharing"
    preset: str = "custom"
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    variants: list[Variant] = Field(default_factory=lambda: ["multi_head", "one_head", "single_task", "random"], min_length=1)
    single_tasks: list[int] | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    method: MethodConfig = Field(default_factory=MethodConfig)
    metrics: list[str] = Field(default_factory=list)
    metrics_options: dict[str, Any] = Field(default_factory=dict)
    store: str = "runs/mtlens.sqlite"
    report_dir: str | None = None


@dataclass
class RunRecord:
    """One trained variant: its run id, seed, variant, trained task (single-task), status and final values."""

    run_id: str
    seed: int
    variant: str
    task: int | None
    status: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class StudyResult:
    """The runs of a study and where its report went."""

    study: str
    records: list[RunRecord]
    report_dir: Path | None = None


def _run_config(cfg: HardSharingConfig, variant: str, task: int | None) -> dict[str, Any]:
    # What changes the numbers identifies a run; display settings and paths do not.
    body = cfg.model_dump(mode="json", exclude={"preset", "store", "report_dir", "seeds", "variants", "single_tasks"})
    body["train"].pop("progress", None)
    body["variant"] = variant
    body["task"] = task
    return body


def _plan(cfg: HardSharingConfig) -> list[tuple[int, str, int | None]]:
    singles = cfg.single_tasks if cfg.single_tasks is not None else list(range(cfg.data.n_tasks))
    bad = [t for t in singles if not 0 <= t < cfg.data.n_tasks]
    if bad:
        raise MtlensError(f"single_tasks {bad} are not task indices 0..{cfg.data.n_tasks - 1}")
    plan = []
    for seed in cfg.seeds:
        for variant in cfg.variants:
            for task in singles if variant == "single_task" else [None]:
                plan.append((seed, variant, task))
    return plan


def run_hard_sharing(cfg: HardSharingConfig, *, resume: bool = False) -> StudyResult:
    """Trains every planned variant (resuming killed runs when `resume`); returns the records and writes the report."""
    dataset, task_set, data = build_factor_data(cfg.data)
    store = RunStore(cfg.store)
    records = []
    for seed, variant, task in _plan(cfg):
        name = f"seed{seed}/{variant}" + ("" if task is None else f"/task_{task}")
        run, done = open_or_resume(store, cfg.study, _run_config(cfg, variant, task), seed, name, resume)
        if done:
            records.append(RunRecord(run.id, seed, variant, task, "finished", run.summary))
            continue
        seed_everything(seed)
        kwargs = {"task": task} if variant == "single_task" else {}
        model = create_model(variant, task_set.tasks, dataset.image_shape, latent_dim=cfg.model.latent_dim,
                             activation=cfg.model.activation, head_hidden=cfg.model.head_hidden,
                             head_activation=cfg.model.head_activation, **kwargs)
        method = cfg.method.build(len(model.active_tasks))
        store.start(run.id)
        trainer = Trainer(model, method, data, cfg.train.to_train_config(seed), store=store, run_id=run.id,
                          checkpoint_dir=store.artifacts_dir(run.id))
        try:
            values = trainer.fit(resume=resume)
        except NonFiniteLoss as err:
            records.append(RunRecord(run.id, seed, variant, task, "failed", {"error": str(err)}))  # type: ignore[dict-item]
            continue
        except BaseException:
            store.mark_interrupted(run.id)
            raise
        if cfg.metrics:
            scores = encoder_scores(dataset, model, cfg.metrics, seed=seed, settings=cfg.metrics_options,
                                    device=cfg.train.device)
            store.log_metrics(run.id, trainer.global_step, scores)
            values.update(scores)
        store.finish(run.id, values)
        records.append(RunRecord(run.id, seed, variant, task, "finished", values))
    report_dir = Path(cfg.report_dir) if cfg.report_dir else artifacts_root(cfg.store) / f"{cfg.study}_{cfg.preset}"
    from mtlens.plots.hard_sharing import write_report

    write_report(records, task_set.names, report_dir, title=f"Hard sharing on {dataset.name} ({dataset.source})",
                 metrics=cfg.metrics)
    return StudyResult(cfg.study, records, report_dir)


STUDIES.add("hard_sharing", run_hard_sharing, config=HardSharingConfig)
