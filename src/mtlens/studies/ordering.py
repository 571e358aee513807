"""Seed 003: parallel, permuted and soft ordering of shared layers, on the study engine.

Cells (one independent run each, `params` say what it runs):
- fitting (§3.2, Fig. 2): core (linear / relu) x samples per task n x variant (parallel, permuted, single_task
  with 2n samples) x seed; summary: the training accuracy.
- digit_pairs (§4.1, Fig. 4): number of tasks x variant x seed (the digit pairs are drawn from the seed, so the
  variants of one seed are paired); tabular (§4.2, Fig. 5): variant x seed; omniglot (§4.3, Fig. 6): number of
  alphabets x test fraction x variant x seed. The Trainer logs the test error every `eval_every` steps and, for
  soft ordering, the scales' distance and hardness per depth; the trained scales go to the cell's notes.
- celeba (§4.4, Fig. 7c): one of Fig. 7c's models x seed, on the ResNet trunk (studies/ordering_celeba.py).

Omniglot and CelebA need their official files: without them their cells are not planned and the report says
why. The report (plots/ordering_report.py) prints the seed's claims and published numbers beside ours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mtlens.data.digit_pairs import build_digit_pairs, noisy_digits
from mtlens.data.mnist import load_mnist
from mtlens.data.omniglot import ALPHABET_ORDER, OmniglotNotFound, build_omniglot, check_alphabets
from mtlens.data.tabular import build_tabular
from mtlens.data.task_groups import TaskGroupData
from mtlens.errors import MtlensError
from mtlens.methods import METHODS
from mtlens.studies.common import build_method
from mtlens.studies.engine import Cell, CellContext, Study
from mtlens.studies.ordering_celeba import celeba_cells, celeba_missing, check_celeba, run_celeba_cell
from mtlens.studies.ordering_config import OrderingConfig
from mtlens.studies.ordering_experiments import run_group_cell
from mtlens.studies.ordering_fitting import FIT_VARIANTS, random_fit_cell
from mtlens.studies.registry import STUDIES

GROUP_EXPERIMENTS = ("digit_pairs", "tabular", "omniglot")


def omniglot_missing(cfg: OrderingConfig) -> str | None:
    """Returns why the Omniglot cells cannot run (its files are absent), or None when they are present."""
    try:
        check_alphabets(cfg.data_dir, [])
    except OmniglotNotFound as err:
        return str(err)
    return None


def missing_data(cfg: OrderingConfig) -> dict[str, str]:
    """Returns experiment -> why it is skipped, for the requested experiments whose official files are absent."""
    reasons = {"omniglot": omniglot_missing, "celeba": celeba_missing}
    out = {}
    for name, probe in reasons.items():
        if name in cfg.experiments:
            why = probe(cfg)
            if why is not None:
                out[name] = why
    return out


# ---------------------------------------------------------------------------------------------------- cells
def _fitting_cells(cfg: OrderingConfig) -> list[Cell]:
    return [Cell(seed, {"experiment": "fitting", "core": core, "n": n, "variant": v},
                 f"seed{seed}/fitting/{core}/n{n}/{v}")
            for seed in cfg.seeds for core in cfg.fitting.cores for n in getattr(cfg.fitting, core).n_values
            for v in FIT_VARIANTS]


def _group_cells(cfg: OrderingConfig, experiment: str) -> list[Cell]:
    # data first, then seeds: a worker builds each data set once (Omniglot's 50 alphabets per test fraction)
    if experiment == "tabular":
        data: list[dict[str, Any]] = [{}]
        grid: list[dict[str, Any]] = [{}]
    elif experiment == "digit_pairs":
        data, grid = [{}], [{"n_tasks": k} for k in cfg.digit_pairs.n_tasks]
    else:
        data, grid = [{"test_fraction": f} for f in cfg.omniglot.test_fractions], [{"n_tasks": k} for k in cfg.omniglot.n_tasks]
    out = []
    for part in data:
        for seed in cfg.seeds:
            for point in grid:
                params = {"experiment": experiment, **point, **part}
                label = "".join(f"/{'tasks' if k == 'n_tasks' else 'test'}{params[k]}" for k in ("n_tasks", "test_fraction")
                                if k in params)
                out += [Cell(seed, {**params, "variant": v}, f"seed{seed}/{experiment}{label}/{v}") for v in cfg.variants]
    return out


def cells(cfg: OrderingConfig) -> list[Cell]:
    """Returns every cell: the requested experiments' settings x variants x seeds (absent data: none)."""
    skipped = missing_data(cfg)
    out: list[Cell] = []
    for experiment in cfg.experiments:
        if experiment in skipped:
            continue
        if experiment == "fitting":
            out += _fitting_cells(cfg)
        elif experiment == "celeba":
            out += [c for seed in cfg.seeds for c in celeba_cells(cfg, seed)]
        else:
            out += _group_cells(cfg, experiment)
    return out


def check(cfg: OrderingConfig) -> None:
    """Raises one line for what the types cannot catch: the method, permutation counts, incomplete data folders."""
    gradient = getattr(METHODS.get(cfg.method.name), "uses_gradients", False)
    if gradient and cfg.method.level == "feature":
        raise MtlensError(f"method {cfg.method.name} at level 'feature' needs one shared representation; layer-ordering "
                          "models have none (each task mixes the core layers its own way): use method.level=param")
    if gradient and "single_task" in cfg.variants and set(cfg.experiments) & set(GROUP_EXPERIMENTS):
        raise MtlensError(f"the single_task variant shares no parameters, and {cfg.method.name} combines gradients of "
                          "shared ones; drop single_task from variants or use a loss weighting (e.g. ew)")
    cfg.method.build(2)  # unknown method names and options
    counts = {"digit_pairs": max(cfg.digit_pairs.n_tasks), "omniglot": max(cfg.omniglot.n_tasks)}
    for experiment in set(cfg.experiments) & set(counts):
        perms = getattr(cfg, experiment).model.permutations
        if perms is not None and "permuted" in cfg.variants and len(perms) < counts[experiment]:
            raise MtlensError(f"{experiment}.model.permutations gives {len(perms)} orders for up to {counts[experiment]} "
                              "tasks; give one per task")
    if "omniglot" in cfg.experiments and omniglot_missing(cfg) is None:
        check_alphabets(cfg.data_dir, ALPHABET_ORDER[: max(cfg.omniglot.n_tasks)])
    if "celeba" in cfg.experiments and celeba_missing(cfg) is None:
        check_celeba(cfg)


# ---------------------------------------------------------------------------------------------------- running
def _fitting(cfg: OrderingConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    p = cell.params
    setting = getattr(cfg.fitting, p["core"]).setting("linear" if p["core"] == "linear" else "relu")
    ctx.note("data_source", "random binary patterns on uniform inputs (seed 003 §3.2), drawn from the seed")
    result = random_fit_cell(p["n"], p["variant"], p["core"], cell.seed, setting, device=ctx.device,
                             checkpoint_dir=ctx.artifacts, resume=ctx.resume)
    return result.values()


def _digit_pairs(cfg: OrderingConfig, cell: Cell, ctx: CellContext) -> TaskGroupData:
    section = cfg.digit_pairs
    digits = ctx.cached(["digits", cfg.data_dir, section.noise, section.noise_seed],
                        lambda: noisy_digits(load_mnist(cfg.data_dir), section.noise, section.noise_seed))
    return build_digit_pairs(seed=cell.seed, n_tasks=cell.params["n_tasks"], n=section.n_train, digits=digits)


def _tabular(cfg: OrderingConfig, cell: Cell, ctx: CellContext) -> TaskGroupData:
    # App. A.2: one random 80-20 split per table, fixed across trials (split seed 0)
    return ctx.cached(["tabular", cfg.data_dir, cfg.tabular.datasets],
                      lambda: build_tabular(cfg.data_dir, seed=0, datasets=cfg.tabular.datasets))


def _omniglot(cfg: OrderingConfig, cell: Cell, ctx: CellContext) -> TaskGroupData:
    fraction, k = cell.params["test_fraction"], cell.params["n_tasks"]
    # every task count takes the first k alphabets of App. A.3's order; an alphabet's split does not depend on k
    data = ctx.cached(["omniglot", cfg.data_dir, fraction, max(cfg.omniglot.n_tasks)],
                      lambda: build_omniglot(cfg.data_dir, n_tasks=max(cfg.omniglot.n_tasks), test_fraction=fraction))
    return dataclasses.replace(data, tasks=data.tasks[:k], train=data.train[:k], test=data.test[:k],
                               input_shapes=data.input_shapes[:k],
                               info={**data.info, "alphabets": list(data.info["alphabets"])[:k]})


GROUP_DATA: dict[str, tuple[Callable[[OrderingConfig, Cell, CellContext], TaskGroupData], str]] = {
    "digit_pairs": (_digit_pairs, "dense"),
    "tabular": (_tabular, "dense"),
    "omniglot": (_omniglot, "conv"),
}


def _group(cfg: OrderingConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    experiment = cell.params["experiment"]
    build, core = GROUP_DATA[experiment]
    data = build(cfg, cell, ctx)
    ctx.note("data_source", f"{data.name}: {data.source}")
    ctx.note("tasks", [[t.name, t.kind] for t in data.tasks])
    ctx.note("data_info", {k: v for k, v in data.info.items() if k != "datasets"})
    method = build_method(cfg.method.name, data.n_tasks, cfg.method.level, dict(cfg.method.options))
    result = run_group_cell(data, cell.params["variant"], cell.seed, getattr(cfg, experiment).model.setting(core),
                            experiment=experiment, method=method, device=ctx.device, store=ctx.sink,
                            run_id=ctx.run_id, checkpoint_dir=ctx.artifacts, resume=ctx.resume)
    if result.scales is not None:
        ctx.note("scales", result.scales)
    if result.permutations is not None:
        ctx.note("permutations", result.permutations)
    return result.values()


RUNNERS: dict[str, Callable[[OrderingConfig, Cell, CellContext], dict[str, float]]] = {
    "fitting": _fitting, "digit_pairs": _group, "tabular": _group, "omniglot": _group, "celeba": run_celeba_cell,
}


def run_cell(cfg: OrderingConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Runs one cell (its experiment's function, trained by the Trainer); returns its final values."""
    return RUNNERS[cell.params["experiment"]](cfg, cell, ctx)


def report(cfg: OrderingConfig, runs: list[Any], rep: Any) -> None:
    """The seed's claims and published tables beside ours, per experiment, with Figs. 2, 4, 5, 6 and 7."""
    from mtlens.plots.ordering_report import fill_report

    fill_report(cfg, runs, rep, missing_data(cfg))


def method_overrides(name: str | None, level: str | None) -> list[str]:
    """Returns the overrides of `--method NAME --method-level LEVEL`: the method replacing the sum of the task losses."""
    return ([f"method.name={name}"] if name else []) + ([f"method.level={level}"] if level else [])


STUDIES.add(Study("ordering", OrderingConfig, cells, run_cell, report,
                  title="Parallel, permuted and soft ordering of shared layers (seed 003)", published="seed003",
                  check=check, method_overrides=method_overrides))
