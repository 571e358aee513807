"""Seed 004: every MTL method on one benchmark, at parameter and feature level, with the challenge measures.

Each (seed, method, level) is one cell; with `methods.single_task` each task also gets a single-task cell
(equal weighting on that task alone), the baselines of the relative multi-task gain Δm%. Every
`measures.every` steps a multi-task cell records GDS and GMS (from the parameter-level task gradients) and FD
(from the feature-level ones) as `challenge/<measure>`. The report holds test performance per method relative
to equal weighting (Tables 1-3 layout, every metric of every task, with Δm%), feature level relative to
parameter level (Table 4), the measures' trajectories relative to the baseline (Figs. 3-5) and the ranking
similarity of each measure with test performance per task (Tables 5-7), each beside the paper's where the
benchmark is the paper's.

The data is a factor dataset with random-MLP tasks or a task set (multi-head MLP model; presets `quick`,
`paper`, `multimnist`), or a dense benchmark (a dilated ResNet with a dense head per task, `dense_resnet`;
presets `nyuv2` and `cityscapes`: seed 004 App. 7 for a GPU, and `dense_quick`: the procedural dense scene on
a CPU). The `model` section holds both kinds' settings; setting one the data does not use is an error.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, ClassVar, Literal

from pydantic import Field

from mtlens.config import Section
from mtlens.data import dataset_kind
from mtlens.data.base import FactorDataset
from mtlens.data.dense import dense_tasks
from mtlens.errors import MtlensError
from mtlens.measures.challenge_callback import ChallengeRecorder
from mtlens.methods import METHODS, available_methods
from mtlens.models import create_model
from mtlens.models.hard_sharing import MultiTaskModel
from mtlens.studies.base import StudyConfig
from mtlens.studies.common import (DataConfig, ModelConfig, StudyData, build_method, build_task_data,
                                   cell_train_config, check_data, seed_everything, unset_fields)
from mtlens.studies.engine import Cell, CellContext, Study
from mtlens.studies.registry import STUDIES
from mtlens.training import Trainer


class MethodsConfig(Section):
    """Which methods to compare (equal weighting is the baseline), at which levels, with per-method `options`;
    `exclude` removes methods from `names` (every registered method by default), e.g. those that need more tasks
    than the data has; `single_task` adds one single-task cell per task (the baselines of Δm%)."""

    names: list[str] = Field(default_factory=available_methods, min_length=1)
    exclude: list[str] = Field(default_factory=list)
    levels: list[Literal["param", "feature"]] = Field(default_factory=lambda: ["param", "feature"], min_length=1)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    single_task: bool = False


class MeasuresConfig(Section):
    """Which challenge measures to record, how often (seed 004 used every 10 steps), and the RS window."""

    every: int = Field(10, ge=1)
    which: list[Literal["gds", "gms", "fd"]] = Field(default_factory=lambda: ["gds", "gms", "fd"])
    last: int = Field(50, ge=1)


#: Model fields of each kind of data: the MLP encoder and heads (factor data, task sets), or the dense model.
MLP_FIELDS = ("latent_dim", "activation", "head_hidden", "head_activation")
DENSE_FIELDS = ("backbone", "output_stride", "head", "head_options", "weights")


class BalancingModelConfig(ModelConfig):
    """The encoder and heads: the MLP fields for factor data and task sets (seed 000 Tables 2-3), or a dilated
    ResNet backbone with a dense head per task for a dense benchmark (`weights`: a local torchvision-keyed
    state dict, e.g. ImageNet's as seed 004 App. 7; none = random initialisation)."""

    backbone: Literal["resnet18", "resnet50"] = "resnet18"
    output_stride: Literal[8, 16, 32] = 8
    head: str = "aspp"
    head_options: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = None

    def dense_kwargs(self) -> dict[str, Any]:
        """Returns the keyword arguments of `create_model("dense_resnet", ...)` this section sets."""
        return {"backbone": self.backbone, "output_stride": self.output_stride, "head": self.head,
                "head_options": dict(self.head_options), "weights": self.weights}


class BalancingConfig(StudyConfig):
    """The balancing study's config (presets: mtlens/configs/balancing/*.yaml)."""

    study: Literal["balancing"] = "balancing"
    methods: MethodsConfig = Field(default_factory=MethodsConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: BalancingModelConfig = Field(default_factory=BalancingModelConfig)
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
    excluded = [METHODS.canonical(m) for m in cfg.methods.exclude]
    for m in excluded:
        if m not in names:
            raise MtlensError(f"methods.exclude names {m!r}, which is not among methods.names; remove it from exclude")
    names = [n for n in names if n not in excluded]
    if "ew" not in names:
        raise MtlensError("the balancing study compares every method with equal weighting; add 'ew' to methods.names")
    return ["ew"] + [n for n in dict.fromkeys(names) if n != "ew"]


_DATA: OrderedDict[str, StudyData] = OrderedDict()


def study_data(cfg: BalancingConfig) -> StudyData:
    """Returns the study's data, built once per process for equal data sections (check, cells and serial cells
    share it: a dense benchmark's loader reads and checks every file when it is built)."""
    key = json.dumps([cfg.data_dir, cfg.data.model_dump(mode="json")], sort_keys=True)
    if key not in _DATA:
        while len(_DATA) >= 2:
            _DATA.popitem(last=False)
        _DATA[key] = build_task_data(cfg.data, cfg.data_dir)
    _DATA.move_to_end(key)
    return _DATA[key]


def cells(cfg: BalancingConfig) -> list[Cell]:
    """Returns one cell per (seed, method, level), equal weighting first, then one per task when single-task."""
    options = {METHODS.canonical(k): v for k, v in cfg.methods.options.items()}
    out = [Cell(s, {"method": n, "level": lv, "options": options.get(n, {})}, f"seed{s}/{n}/{lv}")
           for s in cfg.seeds for n in _names(cfg) for lv in _levels_for(n, list(cfg.methods.levels))]
    if cfg.methods.single_task:
        out += [Cell(s, {"method": "ew", "level": "param", "options": {}, "single_task": t},
                     f"seed{s}/single_task/{name}") for s in cfg.seeds for t, name in enumerate(_task_names(cfg))]
    return out


def _task_names(cfg: BalancingConfig) -> list[str]:
    # A benchmark declares its tasks: planning (and `mtlens reproduce --list`) reads no file of it.
    if dataset_kind(cfg.data.dataset) == "benchmark":
        return [t.name for t in dense_tasks(cfg.data.dataset)]
    return [t.name for t in study_data(cfg).tasks]


def _check_model(cfg: BalancingConfig, dense: bool) -> None:
    if dense:
        unset_fields(cfg.model, MLP_FIELDS, "model", f"{cfg.data.dataset} trains a dense ResNet model")
    else:
        unset_fields(cfg.model, DENSE_FIELDS, "model", f"{cfg.data.dataset} trains the MLP multi-head model "
                                                        "(the dense fields are for nyuv2, cityscapes, shapes3d_dense)")


def check(cfg: BalancingConfig) -> None:
    """Raises one line for an unknown method or option, a missing baseline, a model or data key the data does not
    read, a weights file or head option that does not fit, or too short a run for `measures.last`."""
    names = _names(cfg)
    for key in cfg.methods.options:
        if METHODS.canonical(key) not in names:
            raise MtlensError(f"methods.options names {key!r}, which is not among methods.names")
    dense = dataset_kind(cfg.data.dataset) == "benchmark"
    _check_model(cfg, dense)
    if dense:
        dense_tasks(cfg.data.dataset)  # a benchmark without per-pixel tasks (celeba) is refused before it is read
        data = study_data(cfg)
        n_tasks, n_train = len(data.tasks), len(data.splits["train"])
        build_model(cfg, data)  # a weights file with other keys, an unknown head option: one line, before any run
    else:
        dataset, n_train = check_data(cfg.data, cfg.data_dir, factors=False)
        n_tasks = cfg.data.n_tasks if isinstance(dataset, FactorDataset) else len(dataset.tasks)
    for cell in cells(cfg.model_copy(update={"seeds": cfg.seeds[:1]})):
        build_method(cell.params["method"], n_tasks, cell.params["level"], dict(cell.params["options"]))
    steps = cfg.train.total_steps(n_train)
    recorded = -(-steps // cfg.measures.every)
    if recorded < cfg.measures.last:
        raise MtlensError(f"each run records {recorded} values per measure ({steps} steps, every "
                          f"{cfg.measures.every}), fewer than measures.last={cfg.measures.last}; lower measures.every "
                          "or measures.last, or train longer")


def build_model(cfg: BalancingConfig, data: StudyData, task: int | None = None) -> MultiTaskModel:
    """Returns the cell's model: the dense ResNet model for a benchmark, else the multi-head MLP model; `task`
    trains that task alone (a single-task baseline)."""
    if data.dense_tasks:
        active = None if task is None else (task,)
        try:
            return create_model("dense_resnet", data.dense_tasks, data.input_shape, active_tasks=active,
                                **cfg.model.dense_kwargs())
        except TypeError as err:  # a head option the head does not take
            raise MtlensError(f"model.head_options: {err}; see mtlens.models.dense_heads for each head's options") from None
    if task is not None:
        return create_model("single_task", data.tasks, data.input_shape, task=task, **cfg.model.kwargs())
    return create_model("multi_head", data.tasks, data.input_shape, **cfg.model.kwargs())


def run_cell(cfg: BalancingConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Trains one method at one level (or one task alone) for one seed, recording the challenge measures on the
    multi-task cells; returns final test values."""
    data = ctx.cached(["task_data", cfg.data_dir, cfg.data.model_dump(mode="json")], lambda: study_data(cfg))
    ctx.note("data_source", f"{data.name}: {data.source}")
    ctx.note("tasks", [[t.name, t.kind] for t in data.dense_tasks] or [[t.name, t.kind] for t in data.tasks])
    seed_everything(cell.seed)
    p = cell.params
    task = p.get("single_task")
    model = build_model(cfg, data, task)
    method = build_method(p["method"], len(model.active_tasks), p["level"], dict(p["options"]))
    callbacks = [] if task is not None else [
        ChallengeRecorder(every=cfg.measures.every, measures=cfg.measures.which, prefix="challenge/")]
    trainer = Trainer(model, method, data.splits, cell_train_config(cfg.train, cell.seed), store=ctx.sink,
                      run_id=ctx.run_id, checkpoint_dir=ctx.artifacts, callbacks=callbacks)
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
