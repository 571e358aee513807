"""The ordering study's numbers, from the stored cells only: what the report's tables, figures and verdicts show.

Each function takes the study's `CellRun`s (params, seed, summary, notes, series) and returns plain dicts and
lists; plots/ordering_report.py renders them. Values over seeds are kept as lists (the report shows mean ± std).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VARIANTS = ("single_task", "parallel", "permuted", "soft")
LABELS = {"single_task": "single task", "parallel": "parallel", "permuted": "permuted", "soft": "soft",
          "parallel_landmarks": "parallel + landmarks", "soft_landmarks": "soft + landmarks",
          "soft_identity": "soft + identity", "soft_landmarks_identity": "soft + landmarks + identity"}


def runs_of(runs: Sequence[Any], experiment: str, finished: bool = True) -> list[Any]:
    """Returns the cells of one experiment (only those with a final summary when `finished`)."""
    return [r for r in runs if r.params.get("experiment") == experiment and (r.summary or not finished)]


def mean(values: Sequence[float]) -> float:
    """Returns the mean of the finite values (nan for none)."""
    vals = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


# ---------------------------------------------------------------------------------------------------- fitting
@dataclass
class Fitting:
    """Training accuracy per core, variant and n (lists over seeds), and the Fig. 2 comparisons."""

    acc: dict[str, dict[str, dict[int, list[float]]]]
    # per core: (n, parallel(n), permuted(2n)) means where both were run; and permuted(n) - parallel(n) means
    matched: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    advantage: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def fitting(runs: Sequence[Any]) -> Fitting:
    """Returns Fig. 2's accuracies and the "parallel fits n as well as permuted fits 2n" comparisons."""
    acc: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in runs_of(runs, "fitting"):
        p = r.params
        acc[p["core"]][p["variant"]][int(p["n"])].append(float(r.summary["train/mean_acc"]))
    out = Fitting({c: {v: dict(by_n) for v, by_n in vs.items()} for c, vs in acc.items()})
    for core, by_variant in out.acc.items():
        par, perm = by_variant.get("parallel", {}), by_variant.get("permuted", {})
        out.matched[core] = [(n, mean(par[n]), mean(perm[2 * n])) for n in sorted(par) if 2 * n in perm]
        out.advantage[core] = [(n, mean(perm[n]) - mean(par[n])) for n in sorted(par) if n in perm]
    return out


# ---------------------------------------------------------------------------------------------------- group experiments
@dataclass
class Group:
    """One per-task-batch experiment: final test error and loss per variant and setting, paired ratios to parallel."""

    error: dict[str, dict[Any, list[float]]]
    loss: dict[str, dict[Any, list[float]]]
    ratio: dict[str, dict[Any, list[float]]]  # per seed: variant error / parallel error (same seed and setting)
    loss_ratio: dict[str, dict[Any, list[float]]]
    zero_parallel: int  # cells whose parallel error was 0 (no error ratio)
    settings: list[Any]


def group(runs: Sequence[Any], experiment: str, key: str | tuple[str, ...] = "n_tasks") -> Group:
    """Returns an experiment's final errors and losses by variant and setting (`key`: the params naming a setting;
    none: one setting, None)."""
    keys = (key,) if isinstance(key, str) else key

    def setting(r: Any) -> Any:
        values = tuple(r.params.get(k) for k in keys)
        return None if not values else values[0] if len(values) == 1 else values

    error: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    loss: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_cell: dict[tuple[Any, int, str], dict[str, float]] = {}
    for r in runs_of(runs, experiment):
        s, v = setting(r), r.params["variant"]
        error[v][s].append(float(r.summary["test/mean_error"]))
        loss[v][s].append(float(r.summary["test/mean_loss"]))
        by_cell[(s, r.seed, v)] = r.summary
    ratio: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    loss_ratio: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    zero = 0
    for (s, seed, v), summary in by_cell.items():
        base = by_cell.get((s, seed, "parallel"))
        if base is None or v == "parallel":
            continue
        if base["test/mean_error"] > 0:
            ratio[v][s].append(summary["test/mean_error"] / base["test/mean_error"])
        else:
            zero += 1
        if base["test/mean_loss"] > 0:
            loss_ratio[v][s].append(summary["test/mean_loss"] / base["test/mean_loss"])
    settings = sorted({s for by_s in error.values() for s in by_s}, key=lambda s: (s is None, s))

    def plain(d: dict) -> dict:
        return {v: dict(by_s) for v, by_s in d.items()}

    return Group(plain(error), plain(loss), plain(ratio), plain(loss_ratio), zero, settings)


def trend(by_setting: dict[Any, list[float]]) -> tuple[Any, float, Any, float] | None:
    """Returns (first setting, its mean, last setting, its mean) of a ratio by number of tasks, or None."""
    ks = sorted(k for k, v in by_setting.items() if v)
    if len(ks) < 2:
        return None
    return ks[0], mean(by_setting[ks[0]]), ks[-1], mean(by_setting[ks[-1]])


def error_curves(runs: Sequence[Any], experiment: str, where: dict[str, Any] | None = None
                 ) -> dict[str, tuple[list[int], list[list[float]]]]:
    """Returns variant -> (iterations, per seed the mean test error at each) from the logged `test/mean_acc`."""
    out: dict[str, tuple[list[int], list[list[float]]]] = {}
    for v in VARIANTS:
        curves = []
        for r in runs_of(runs, experiment):
            if r.params["variant"] != v or any(r.params.get(k) != x for k, x in (where or {}).items()):
                continue
            points = sorted(r.series().get("test/mean_acc", []))
            if points:
                curves.append(([int(s) for s, _ in points], [1.0 - a for _, a in points]))
        if curves:
            steps = curves[0][0]
            same = [c for s, c in curves if s == steps]  # a resumed or partial run with other steps is left out
            out[v] = (steps, same)
    return out


def soft_run(runs: Sequence[Any], experiment: str, prefer: dict[str, Any] | None = None, variant: str = "soft") -> Any | None:
    """Returns a finished soft-ordering cell with trained scales (matching `prefer` if any), lowest seed first."""
    cands = [r for r in runs_of(runs, experiment) if r.params["variant"] == variant and r.notes.get("scales")]
    cands.sort(key=lambda r: r.seed)
    for r in cands:
        if all(r.params.get(k) == v for k, v in (prefer or {}).items()):
            return r
    return cands[0] if cands else None


def scale_trace(run: Any) -> dict[str, list] | None:
    """Returns a soft cell's logged scale trace (steps, distance and hardness per depth), or None."""
    return trace_from_series(run.series())


def trace_from_series(series: Mapping[str, Sequence[tuple[int, float]]]) -> dict[str, list] | None:
    """Returns the scale trace ({"step", "distance", "hardness"} as `ScaleTrace.as_dict`) from logged metric series."""
    depths = sorted(int(k.rsplit("d", 1)[1]) for k in series if k.startswith("scales/distance/d"))
    if not depths:
        return None
    steps = sorted({step for k in depths for step, _ in series[f"scales/distance/d{k}"]})
    rows = {name: {k: dict(series.get(f"scales/{name}/d{k}", [])) for k in depths} for name in ("distance", "hardness")}
    keep = [st for st in steps if all(st in rows[n][k] for n in rows for k in depths)]
    return {"step": keep, **{n: [[rows[n][k][st] for k in depths] for st in keep] for n in rows}}


def task_names(run: Any) -> list[str]:
    """Returns the task names a cell noted."""
    return [name for name, _ in run.notes.get("tasks", [])]
