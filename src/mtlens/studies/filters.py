"""Seed 001: information filters, task clustering from the learned noise, and MTVIB, as a study on the engine.

Three parts, each a list of independent trials (one cell = one setting x one trial seed, a
`run_filter_trial` call; trial k of a part uses `seeds[k]`, so every row of a part sees the same digit
assignments):

- `table5` (Table V, §V "Ablation Analysis"): clustering success of learned filters vs fixed noise
  (sigma^2 = e, then the variances learned on the frozen encoder) at beta 0.1 / 0.05 / 0.01, on the 4x3
  Grouped-MNIST layout with d = 4 and a fresh digit assignment per trial.
- `sweep` (Figs. 2-4): beta in {0, 0.01, 0.1, 0.5} on the layouts of Fig. 2 (its fixed left-column groups,
  4 groups of 3, 4 of 4) and Fig. 3 (6 groups of 4, d = 8): success, distances, log-variances, accuracy.
- `table4` (Table IV): MultiMNIST accuracy of no noise / filters at beta 0, 1e-4 .. 1e-1 / MTVIB at the same
  betas, each evaluated with the noise sampled and at its mean.

A cell's params hold its whole trial setting (the part's epochs, lr, batch size, data sizes resolved), so
the sections are `cell_fields`: changing which betas or layouts run keeps finished trials, and the report
is built from the runs' params alone. A trial that diverges raises: the engine retries it once, records it
as failed with its reason, and the report counts it as a failed clustering (never dropped).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from mtlens.config import Section
from mtlens.errors import MtlensError
from mtlens.studies.base import StudyConfig
from mtlens.studies.common import MethodConfig, build_method
from mtlens.studies.engine import Cell, CellContext, Study
from mtlens.studies.registry import STUDIES

Beta = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PARTS = ("table5", "sweep", "table4")


class ClusteredSpec(Section):
    """`n_clusters` clusters of `tasks` groups of `size` digits, the groups of a cluster sharing `shared`."""

    n_clusters: int = Field(2, ge=1)
    tasks: int = Field(2, ge=1)
    size: int = Field(3, ge=1)
    shared: int = Field(2, ge=0)


class LayoutSpec(Section):
    """A Grouped-MNIST layout: a named one ("4x3", "4x4", "6x4": digits drawn per trial; "fig2_left",
    "fig3_middle": fixed digits), or your own `groups` (fixed) or `clustered` pattern (drawn per trial), with
    the expected task `clusters` (needed for your own groups) and the latent size d."""

    name: str
    groups: list[list[int]] | None = None
    clustered: ClusteredSpec | None = None
    clusters: list[list[int]] | None = None
    latent_dim: int = Field(4, ge=1)

    def layout(self) -> Any:
        """Returns the layout as a cell param: the name, the groups, or the clustered pattern's mapping."""
        if self.groups is not None and self.clustered is not None:
            raise MtlensError(f"layout {self.name!r}: give groups or clustered, not both")
        if self.groups is not None:
            return self.groups
        return self.clustered.model_dump() if self.clustered is not None else self.name


class PartConfig(Section):
    """What every part sets per trial; None takes the value of the `train` section (`n`: all images)."""

    trials: int | None = Field(None, ge=1)  # the first `trials` of `seeds` (None: all)
    epochs: int | None = Field(None, ge=0)
    lr: float | None = Field(None, gt=0)
    batch_size: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=10)


class AblationConfig(PartConfig):
    """Table V: filters vs fixed noise at each beta on one layout (variance_epochs: the second stage)."""

    layout: LayoutSpec = Field(default_factory=lambda: LayoutSpec(name="4x3"))
    betas: list[Beta] = Field(default_factory=lambda: [0.1, 0.05, 0.01], min_length=1)
    variants: list[Literal["filters", "fixed_noise"]] = Field(default_factory=lambda: ["filters", "fixed_noise"],
                                                             min_length=1)
    variance_epochs: int | None = Field(None, ge=0)


def _sweep_layouts() -> list[LayoutSpec]:
    # Fig. 2's columns (d = 4) and Fig. 3's six tasks (d = 8: "Latent space of size 8")
    return [LayoutSpec(name="fig2_left"), LayoutSpec(name="4x3"), LayoutSpec(name="4x4"),
            LayoutSpec(name="6x4", latent_dim=8)]


class SweepConfig(PartConfig):
    """Figs. 2-4: the filters at each beta on each layout."""

    layouts: list[LayoutSpec] = Field(default_factory=_sweep_layouts, min_length=1)
    betas: list[Beta] = Field(default_factory=lambda: [0.0, 0.01, 0.1, 0.5], min_length=1)


class AccuracyConfig(PartConfig):
    """Table IV: MultiMNIST (preset ijcnn2022) accuracy per model and beta; n_test: test overlays (None: one each)."""

    variants: list[Literal["no_noise", "filters", "mtvib"]] = Field(
        default_factory=lambda: ["no_noise", "filters", "mtvib"], min_length=1)
    betas: list[Beta] = Field(default_factory=lambda: [0.0, 1e-4, 1e-3, 1e-2, 1e-1], min_length=1)
    latent_dim: int = Field(4, ge=1)
    n_test: int | None = Field(None, ge=1)


class FiltersConfig(StudyConfig):
    """The filters study's config (presets: mtlens/configs/filters/*.yaml).

    Of `train`, the trials use epochs, lr and batch_size (where a part sets none) and device; each trial logs
    and checkpoints once per epoch, so the Trainer's other settings are refused when changed (`check`).
    """

    study: Literal["filters"] = "filters"
    parts: list[Literal["table5", "sweep", "table4"]] = Field(default_factory=lambda: list(PARTS), min_length=1)
    table5: AblationConfig = Field(default_factory=AblationConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    table4: AccuracyConfig = Field(default_factory=AccuracyConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)

    cell_fields: ClassVar[frozenset[str]] = frozenset({"parts", "table5", "sweep", "table4"})


def _common(cfg: FiltersConfig, part: PartConfig) -> dict[str, Any]:
    return {"epochs": cfg.train.epochs if part.epochs is None else part.epochs,
            "lr": cfg.train.lr if part.lr is None else part.lr,
            "batch_size": cfg.train.batch_size if part.batch_size is None else part.batch_size, "n": part.n}


def _grouped(layout: LayoutSpec) -> dict[str, Any]:
    return {"dataset": "grouped_mnist", "layout_name": layout.name, "layout": layout.layout(),
            "clusters": layout.clusters, "latent_dim": layout.latent_dim}


def _seeds(cfg: FiltersConfig, part: PartConfig) -> list[int]:
    return list(cfg.seeds if part.trials is None else cfg.seeds[: part.trials])


def settings(cfg: FiltersConfig) -> list[dict[str, Any]]:
    """Returns the trial setting of every row of every chosen part (the cell params without a seed)."""
    out: list[dict[str, Any]] = []
    if "table5" in cfg.parts:
        t = cfg.table5
        for variant in t.variants:
            for beta in t.betas:
                extra = {"variance_epochs": t.variance_epochs} if variant == "fixed_noise" else {}
                out.append({"part": "table5", **_grouped(t.layout), "variant": variant, "beta": beta,
                            **_common(cfg, t), **extra})
    if "sweep" in cfg.parts:
        names = [layout.name for layout in cfg.sweep.layouts]
        if len(set(names)) != len(names):
            raise MtlensError(f"sweep.layouts names {names}: each layout needs its own name")
        for layout in cfg.sweep.layouts:
            for beta in cfg.sweep.betas:
                out.append({"part": "sweep", **_grouped(layout), "variant": "filters", "beta": beta,
                            **_common(cfg, cfg.sweep)})
    if "table4" in cfg.parts:
        t4 = cfg.table4
        for variant in t4.variants:
            for beta in [None] if variant == "no_noise" else t4.betas:
                out.append({"part": "table4", "dataset": "multimnist", "latent_dim": t4.latent_dim,
                            "variant": variant, "beta": beta, **_common(cfg, t4), "n_test": t4.n_test})
    return out


def cell_name(params: dict[str, Any], seed: int) -> str:
    """Returns e.g. 'table5/4x3/d4/fixed_noise/beta0.05/seed3' or 'table4/mtvib/beta0.001/seed0'."""
    where = "" if params["dataset"] == "multimnist" else f"/{params['layout_name']}/d{params['latent_dim']}"
    beta = "" if params["beta"] is None else f"/beta{params['beta']:g}"
    return f"{params['part']}{where}/{params['variant']}{beta}/seed{seed}"


def cells(cfg: FiltersConfig) -> list[Cell]:
    """Returns one cell per trial: every setting of the chosen parts x the part's trial seeds."""
    return [Cell(seed, params, cell_name(params, seed)) for params in settings(cfg)
            for seed in _seeds(cfg, getattr(cfg, params["part"]))]


def trial_setting(params: dict[str, Any], cfg: FiltersConfig, device: str) -> Any:
    """Returns the `FilterTrialSetting` of a cell's params (raises one line on a bad layout or value)."""
    from mtlens.studies.filter_trials import ClusteredLayout, FilterTrialSetting

    layout = params.get("layout", "4x3")
    if isinstance(layout, dict):
        layout = ClusteredLayout(**layout)
    elif isinstance(layout, list):
        layout = tuple(tuple(g) for g in layout)
    clusters = params.get("clusters")
    return FilterTrialSetting(
        dataset=params["dataset"], layout=layout, variant=params["variant"], beta=params["beta"],
        clusters=None if clusters is None else tuple(tuple(c) for c in clusters), latent_dim=params["latent_dim"],
        epochs=params["epochs"], variance_epochs=params.get("variance_epochs"), lr=params["lr"],
        batch_size=params["batch_size"], n=params["n"], n_test=params.get("n_test"), method=cfg.method.name,
        method_level=cfg.method.level, method_options=dict(cfg.method.options), data_dir=cfg.data_dir,
        device=device)


def check(cfg: FiltersConfig) -> None:
    """Raises one line for a bad layout (repeated digit, too many groups, unknown task in a cluster pair),
    a bad trial setting or method option -- before anything is written."""
    import numpy as np

    from mtlens.measures.task_similarity import clustering_success
    from mtlens.studies.filter_trials import check_clusters, trial_layout

    from mtlens.training import TrainConfig

    default = TrainConfig()
    for name in ("betas", "eval_batch_size", "log_every", "checkpoint", "num_workers"):
        if getattr(cfg.train, name) != getattr(default, name):
            raise MtlensError(f"train.{name}={getattr(cfg.train, name)!r} is not used by the filters study (its trials "
                              "log and checkpoint per epoch with Adam's default betas); remove it")
    for params in settings(cfg):
        setting = trial_setting(params, cfg, "cpu")
        n_tasks = 2
        if setting.dataset == "grouped_mnist":
            groups, pairs = trial_layout(setting, cfg.seeds[0])
            check_clusters(pairs, len(groups))
            n_tasks = len(groups)
            clustering_success(np.zeros((n_tasks, n_tasks)), pairs)  # within- and between-cluster pairs both exist
        build_method(cfg.method.name, n_tasks, cfg.method.level, dict(cfg.method.options))


def run_cell(cfg: FiltersConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Runs one trial; returns its numbers (success, margin, distances, log-variances, accuracies)."""
    from mtlens.data.mnist import load_mnist
    from mtlens.studies.filter_trials import run_filter_trial

    digits = ctx.cached(["mnist", cfg.data_dir], lambda: load_mnist(cfg.data_dir))
    ctx.note("data_source", f"MNIST digits, {digits.source}")
    record = run_filter_trial(trial_setting(dict(cell.params), cfg, ctx.device), cell.seed, store=ctx.sink,
                              run_id=ctx.run_id, checkpoint_dir=ctx.artifacts, resume=ctx.resume, digits=digits)
    ctx.note("tasks", record["tasks"])
    if record["groups"] is not None:
        ctx.note("groups", record["groups"])
    if record["status"] != "finished":
        raise MtlensError(record["reason"])  # the engine retries once, then records the failure with this reason
    return {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def report(cfg: FiltersConfig, runs: list[Any], rep: Any) -> None:
    """Table V beside the seed's, the beta sweep, Table IV beside the seed's; Figs. 2 and 4; success with CIs."""
    from mtlens.plots.filters import fill_report

    fill_report(cfg, runs, rep)


def method_overrides(name: str | None, level: str | None) -> list[str]:
    """Returns the overrides of `--method NAME --method-level LEVEL`: the method combining every trial's losses."""
    return ([f"method.name={name}"] if name else []) + ([f"method.level={level}"] if level else [])


STUDIES.add(Study("filters", FiltersConfig, cells, run_cell, report,
                  title="Information filters and task clustering (seed 001)", published="seed001", check=check,
                  method_overrides=method_overrides))
