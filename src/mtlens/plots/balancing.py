"""The balancing study's report (seed 004): performance vs equal weighting, feature vs parameter level,
challenge-measure trajectories relative to the baseline, and ranking similarity, each beside the paper's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from mtlens.measures.challenge import ranking_similarity, trajectory_score
from mtlens.plots.report import Report, mean_std

THRESHOLD = 0.01  # seed 004 Table 1: changes within 0.01 of the baseline count as comparable


class TaskSpec(NamedTuple):
    """What the report needs of a task: its name and kind ('regression' is scored by MSE, others by accuracy)."""

    name: str
    kind: str


@dataclass
class MethodRun:
    """One finished or failed (seed, method, level) with its final test values and measure trajectories."""

    seed: int
    method: str
    level: str
    status: str
    values: dict[str, float] = field(default_factory=dict)
    trajectories: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def _key(spec: TaskSpec) -> str:
    return f"test/{spec.name}/{'mse' if spec.kind == 'regression' else 'acc'}"


def _lower_is_better(spec: TaskSpec) -> bool:
    return spec.kind == "regression"


def performance(records: Sequence[MethodRun], tasks: Sequence[TaskSpec]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Returns (method, level) -> task -> test value per finished seed."""
    acc: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.status == "finished":
            for spec in tasks:
                if _key(spec) in r.values:
                    acc[(r.method, r.level)][spec.name].append(r.values[_key(spec)])
    return acc


def _marked(values: list[float], base: float, spec: TaskSpec) -> str:
    diff = float(np.mean(values)) - base
    if abs(diff) <= THRESHOLD:
        return f"{mean_std(values, 4)} (−)"
    better = diff < 0 if _lower_is_better(spec) else diff > 0
    return f"{mean_std(values, 4)} ({'↑' if better else '↓'}{abs(diff):.3f})"


def performance_rows(perf: dict[tuple[str, str], dict[str, list[float]]], tasks: Sequence[TaskSpec]) -> list[list[str]]:
    """Returns rows: each method's test values (mean ± std over seeds), marked against equal weighting.

    Parameter-level methods, then the feature-level runs of methods that have no parameter-level run.
    """
    base = {t: float(np.mean(v)) for t, v in perf.get(("ew", "param"), {}).items()}
    keys = [k for k in perf if k[1] == "param"] + [k for k in perf if k[1] == "feature" and (k[0], "param") not in perf]
    rows = []
    for method, level in keys:
        vals = perf[(method, level)]
        cells = []
        for t in tasks:
            if t.name not in vals:
                cells.append("—")
            elif method == "ew" or t.name not in base:
                cells.append(mean_std(vals[t.name], 4))
            else:
                cells.append(_marked(vals[t.name], base[t.name], t))
        label = "baseline (ew)" if method == "ew" else method + (" (feature)" if level == "feature" else "")
        rows.append([label] + cells)
    return rows


def feature_vs_param_rows(perf: dict[tuple[str, str], dict[str, list[float]]], tasks: Sequence[TaskSpec]) -> list[list[str]]:
    """Returns rows: feature-level test values relative to the same method at parameter level (%, seed means)."""
    rows = []
    for (method, level), vals in perf.items():
        param = perf.get((method, "param"))
        if level != "feature" or param is None:
            continue
        cells = []
        for t in tasks:
            p = float(np.mean(param[t.name])) if param.get(t.name) else 0.0
            if vals.get(t.name) and p != 0:
                rel = (float(np.mean(vals[t.name])) - p) / abs(p)
                better = rel < 0 if _lower_is_better(t) else rel > 0
                # RGW and other gradient-independent weightings are linear: both levels give the same update.
                cells.append("0.0%" if abs(rel) < 5e-4 else f"{100 * rel:+.1f}%{' ↑' if better else ' ↓'}")
            else:
                cells.append("—")
        rows.append([method] + cells)
    return rows


def measure_scores(records: Sequence[MethodRun], measure: str, last: int) -> dict[str, float]:
    """Returns method -> the measure's score (mean of the last `last` values), averaged over seeds (param level)."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.status == "finished" and r.level == "param" and r.trajectories.get(measure):
            acc[r.method].append(trajectory_score([v for _, v in r.trajectories[measure]], last))
    return {m: float(np.mean(v)) for m, v in acc.items()}


def ranking_rows(records: Sequence[MethodRun], tasks: Sequence[TaskSpec], measures: Sequence[str], last: int
                 ) -> list[list[str]]:
    """Returns rows: per measure and task, S (and |S - 0.5|) over the parameter-level methods."""
    perf = {m: {t: float(np.mean(v)) for t, v in d.items()} for (m, lv), d in performance(records, tasks).items()
            if lv == "param"}
    rows = []
    for measure in measures:
        scores = measure_scores(records, measure, last)
        methods = [m for m in scores if m in perf]
        if len(methods) < 2:
            continue
        row = [ranking_similarity([scores[m] for m in methods], [perf[m][t.name] for m in methods]) for t in tasks]
        mean_sym = float(np.mean([rs.symmetric for rs in row]))
        rows.append([measure.upper()] + [f"{rs.similarity:.3f} ({rs.symmetric:.3f})" for rs in row] + [f"({mean_sym:.3f})"])
    return rows


def smooth(y: np.ndarray) -> np.ndarray:
    """Returns the moving average over 1/10 of the trajectory (seed 004 §5.4, App. 8)."""
    w = max(1, len(y) // 10)
    return np.convolve(y, np.ones(w) / w, mode="valid")


def trajectory_figure(records: Sequence[MethodRun], measure: str) -> Any | None:
    """Returns the measure's trajectories relative to equal weighting (param level, mean over seeds), or None."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[dict[int, float]]] = defaultdict(list)
    for r in records:
        if r.status == "finished" and r.level == "param" and r.trajectories.get(measure):
            curves[r.method].append(dict(r.trajectories[measure]))
    if "ew" not in curves or len(curves) < 2:
        return None

    def mean_curve(runs: list[dict[int, float]]) -> dict[int, float]:
        steps = sorted(set.intersection(*(set(r) for r in runs)))
        return {s: float(np.mean([r[s] for r in runs])) for s in steps}

    base = mean_curve(curves["ew"])
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.set_prop_cycle(color=plt.cm.tab20(np.arange(20)))  # 17 methods: ten colours would repeat
    for method, runs in curves.items():
        if method == "ew":
            continue
        c = mean_curve(runs)
        steps = [s for s in sorted(c) if s in base]
        if len(steps) < 2:
            continue
        rel = smooth(np.array([c[s] - base[s] for s in steps]))
        ax.plot(steps[len(steps) - len(rel):], rel, label=method, lw=1)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{measure.upper()} − baseline")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # outside the curves
    return fig


def _records(runs: Sequence[Any]) -> list[MethodRun]:
    out = []
    for r in runs:
        series = r.series() if r.status == "finished" else {}
        traj = {k.split("/", 1)[1]: v for k, v in series.items() if k.startswith("challenge/")}
        out.append(MethodRun(r.seed, r.params["method"], r.params["level"], r.status, r.summary, traj))
    return out


def _tasks(runs: Sequence[Any]) -> list[TaskSpec]:
    for r in runs:
        if r.notes.get("tasks"):
            return [TaskSpec(n, k) for n, k in r.notes["tasks"]]
    return []


def fill_report(cfg: Any, runs: Sequence[Any], rep: Report) -> None:
    """Adds the balancing tables and figures to `rep`, from the cells' stored values and series only."""
    records, tasks = _records(runs), _tasks(runs)
    perf = performance(records, tasks)
    measures = [m for m in cfg.measures.which if any(m in r.trajectories for r in records)]
    heads = [f"{t.name} ({'↓' if _lower_is_better(t) else '↑'})" for t in tasks]
    rep.text(f"Dataset {cfg.data.dataset}; {len({r.seed for r in runs})} seed(s); {cfg.train.epochs} epochs per cell; "
             f"challenge measures every {cfg.measures.every} steps.")
    rep.section("Test performance relative to equal weighting (seed 004 Tables 1-3 layout)")
    rep.table("Test performance per method", ["method"] + heads, performance_rows(perf, tasks),
              note=f"↑ better, ↓ worse than the baseline by more than {THRESHOLD}; − comparable. Mean ± std over seeds.")
    rep.published_table("table_1")
    rep.section("Feature-level relative to parameter-level gradients (Table 4 layout)")
    rep.table("Feature level relative to parameter level", ["method"] + [t.name for t in tasks],
              feature_vs_param_rows(perf, tasks))
    rep.published_table("table_4")
    rep.section("Ranking similarity of each measure with test performance (Tables 5-7 layout)")
    rep.table("Ranking similarity S (|S − 0.5|)", ["measure"] + [t.name for t in tasks] + ["mean"],
              ranking_rows(records, tasks, measures, cfg.measures.last),
              note=f"Each method's measure score is the mean of its last {cfg.measures.last} recorded values "
                   "(parameter level). The paper reports S in %.")
    rep.published_table("table_5")
    rep.section("Trajectories relative to the baseline (seed 004 Figs. 3-5)")
    for m in measures:
        fig = trajectory_figure(records, m)
        if fig is not None:
            rep.figure(f"{m.upper()} relative to equal weighting", fig,
                       "Parameter level, mean over seeds, moving average over 1/10 of the run (seed 004 App. 8).")
