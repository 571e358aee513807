"""The balancing study's report (seed 004): performance vs equal weighting (every metric of every task, Δm%
against single-task baselines), feature vs parameter level, challenge-measure trajectories relative to the
baseline, and ranking similarity per task, each beside the paper's where the benchmark is the paper's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtlens.errors import MtlensError
from mtlens.measures.challenge import ranking_similarity, trajectory_score
from mtlens.measures.dense import DENSE_METRICS, HIGHER_IS_BETTER, delta_m
from mtlens.plots.report import Report, mean_std

THRESHOLD = 0.01  # seed 004 Table 1: changes within 0.01 of the baseline count as comparable

#: The test metrics the Trainer stores per task kind (the model's evaluator), the first the kind's headline.
KIND_METRICS: dict[str, tuple[str, ...]] = {"regression": ("mse",), "binary": ("acc",), "multiclass": ("acc",),
                                            **DENSE_METRICS}
HIGHER = {"mse": False, "acc": True, **HIGHER_IS_BETTER}

#: Seed 004's tables beside ours, by benchmark: (performance, feature vs parameter level, ranking similarity).
#: Factor datasets and task sets get the MetaGraspNet tables, shown for their layout and effect sizes.
PUBLISHED = {"nyuv2": ("table_3", "table_4", "table_7"), "cityscapes": ("table_2", "table_4", "table_6")}
SYNTHETIC = ("table_1", "table_4", "table_5")


@dataclass(frozen=True)
class Column:
    """One reported number per run: a task's test metric and whether higher is better."""

    task: str
    metric: str
    higher: bool

    @property
    def key(self) -> str:
        return f"test/{self.task}/{self.metric}"


@dataclass(frozen=True)
class TaskSpec:
    """What the report needs of a task: its name and kind (regression, binary, multiclass or a dense kind)."""

    name: str
    kind: str

    @property
    def columns(self) -> list[Column]:
        return [Column(self.name, m, HIGHER[m]) for m in KIND_METRICS[self.kind]]


@dataclass
class MethodRun:
    """One finished or failed (seed, method, level) — or single-task (`task`) — run with its final test values."""

    seed: int
    method: str
    level: str
    status: str
    values: dict[str, float] = field(default_factory=dict)
    trajectories: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    task: str | None = None


Performance = dict[tuple[str, str], dict[str, list[float]]]


def _arrow(col: Column) -> str:
    return "↑" if col.higher else "↓"


def columns(tasks: Sequence[TaskSpec]) -> list[Column]:
    """Returns every reported metric of every task, in task order."""
    return [c for t in tasks for c in t.columns]


def headlines(tasks: Sequence[TaskSpec]) -> list[Column]:
    """Returns each task's headline metric (seed 004 Tables 2-3 and 6-7: SS mIoU, DE L1 error, NE mean angle)."""
    return [t.columns[0] for t in tasks]


def header(cols: Sequence[Column], tasks: Sequence[TaskSpec], arrows: bool = True) -> list[str]:
    """Returns column titles: the task alone where it has one metric, else task and metric."""
    single = {t.name for t in tasks if len(t.columns) == 1}
    return [(c.task if c.task in single else f"{c.task} {c.metric}") + (f" ({_arrow(c)})" if arrows else "")
            for c in cols]


def performance(records: Sequence[MethodRun], cols: Sequence[Column]) -> Performance:
    """Returns (method, level) -> column key -> test value per finished seed (multi-task runs)."""
    acc: Performance = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.status == "finished" and r.task is None:
            for c in cols:
                if c.key in r.values:
                    acc[(r.method, r.level)][c.key].append(r.values[c.key])
    return acc


def single_task_values(records: Sequence[MethodRun], cols: Sequence[Column]) -> dict[str, list[float]]:
    """Returns column key -> the test values of the single-task runs of the column's task, per finished seed."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.status == "finished" and r.task is not None:
            for c in cols:
                if c.task == r.task and c.key in r.values:
                    acc[c.key].append(r.values[c.key])
    return acc


def _marked(values: list[float], base: float, col: Column) -> str:
    diff = float(np.mean(values)) - base
    if abs(diff) <= THRESHOLD:
        return f"{mean_std(values, 4)} (−)"
    better = diff > 0 if col.higher else diff < 0
    return f"{mean_std(values, 4)} ({'↑' if better else '↓'}{abs(diff):.3f})"


def delta_m_percent(values: Mapping[str, list[float]], baselines: Mapping[str, list[float]],
                    cols: Sequence[Column]) -> str:
    """Returns Δm% (every metric weighed equally) of seed-mean values over the single-task seed means, or '—'."""
    if not baselines or any(c.key not in baselines or not values.get(c.key) for c in cols):
        return "—"
    by_task = lambda src: {t: {c.metric: float(np.mean(src[c.key])) for c in cols if c.task == t}  # noqa: E731
                           for t in dict.fromkeys(c.task for c in cols)}
    try:
        return f"{delta_m(by_task(values), by_task(baselines), HIGHER):+.2f}"
    except MtlensError:  # a baseline of 0 (an accuracy of 0, say): the relative gain is undefined
        return "—"


def zero_baselines(baselines: Mapping[str, list[float]], cols: Sequence[Column]) -> list[str]:
    """Returns the columns ("task metric") whose single-task seed mean is 0: Δm% divides by it, so it is undefined."""
    return [f"{c.task} {c.metric}" for c in cols if baselines.get(c.key) and float(np.mean(baselines[c.key])) == 0]


def performance_rows(perf: Performance, cols: Sequence[Column], baselines: Mapping[str, list[float]] | None = None
                     ) -> list[list[str]]:
    """Returns rows: each method's test values (mean ± std over seeds), marked against equal weighting, and
    Δm% when single-task `baselines` are given (then a last row holds those baselines).

    Parameter-level methods, then the feature-level runs of methods that have no parameter-level run.
    """
    base = {k: float(np.mean(v)) for k, v in perf.get(("ew", "param"), {}).items()}
    keys = [k for k in perf if k[1] == "param"] + [k for k in perf if k[1] == "feature" and (k[0], "param") not in perf]
    rows = []
    for method, level in keys:
        vals = perf[(method, level)]
        cells = []
        for c in cols:
            if c.key not in vals:
                cells.append("—")
            elif method == "ew" or c.key not in base:
                cells.append(mean_std(vals[c.key], 4))
            else:
                cells.append(_marked(vals[c.key], base[c.key], c))
        label = "baseline (ew)" if method == "ew" else method + (" (feature)" if level == "feature" else "")
        rows.append([label] + cells + ([delta_m_percent(vals, baselines, cols)] if baselines is not None else []))
    if baselines is not None:
        rows.append(["single task"] + [mean_std(baselines.get(c.key, []), 4) for c in cols] + ["0 (reference)"])
    return rows


def feature_vs_param_rows(perf: Performance, cols: Sequence[Column]) -> list[list[str]]:
    """Returns rows: feature-level test values relative to the same method at parameter level (%, seed means)."""
    rows = []
    for (method, level), vals in perf.items():
        param = perf.get((method, "param"))
        if level != "feature" or param is None:
            continue
        cells = []
        for c in cols:
            p = float(np.mean(param[c.key])) if param.get(c.key) else 0.0
            if vals.get(c.key) and p != 0:
                rel = (float(np.mean(vals[c.key])) - p) / abs(p)
                better = rel > 0 if c.higher else rel < 0
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
        if r.status == "finished" and r.level == "param" and r.task is None and r.trajectories.get(measure):
            acc[r.method].append(trajectory_score([v for _, v in r.trajectories[measure]], last))
    return {m: float(np.mean(v)) for m, v in acc.items()}


def ranking_rows(records: Sequence[MethodRun], cols: Sequence[Column], measures: Sequence[str], last: int
                 ) -> list[list[str]]:
    """Returns rows: per measure and column (a task's headline metric), S (and |S - 0.5|) over the
    parameter-level methods."""
    perf = {m: {k: float(np.mean(v)) for k, v in d.items()} for (m, lv), d in performance(records, cols).items()
            if lv == "param"}
    rows = []
    for measure in measures:
        scores = measure_scores(records, measure, last)
        methods = [m for m in scores if m in perf and all(c.key in perf[m] for c in cols)]
        if len(methods) < 2:
            continue
        row = [ranking_similarity([scores[m] for m in methods], [perf[m][c.key] for m in methods]) for c in cols]
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
        if r.status == "finished" and r.level == "param" and r.task is None and r.trajectories.get(measure):
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
        task = r.params.get("single_task")
        out.append(MethodRun(r.seed, r.params["method"], r.params["level"], r.status, r.summary, traj,
                             None if task is None else _task_name(runs, int(task))))
    return out


def _tasks(runs: Sequence[Any]) -> list[TaskSpec]:
    for r in runs:
        if r.notes.get("tasks"):
            return [TaskSpec(n, k) for n, k in r.notes["tasks"]]
    return []


def _task_name(runs: Sequence[Any], index: int) -> str:
    tasks = _tasks(runs)
    return tasks[index].name if index < len(tasks) else f"task {index}"


def _published(dataset: str) -> tuple[str, str, str] | None:
    """Returns the keys of seed 004's tables for this dataset, or None where there are none (the procedural scene)."""
    from mtlens.data import dataset_kind
    from mtlens.data.registry import BENCHMARKS

    if dataset_kind(dataset) != "benchmark":
        return SYNTHETIC
    return PUBLISHED.get(BENCHMARKS.canonical(dataset))


def _setting(cfg: Any, dense: bool, seeds: int) -> str:
    t = cfg.train
    budget = f"{t.max_steps} steps" if t.max_steps is not None else f"{t.epochs} epochs"
    text = (f"Dataset {cfg.data.dataset}; {seeds} seed(s); {budget} per cell (batch {t.batch_size}); challenge "
            f"measures every {cfg.measures.every} steps.")
    if dense:
        m = cfg.model
        weights = f"weights from {m.weights}" if m.weights else "random initialisation"
        opt = f"SGD (momentum {t.momentum or 0})" if t.optimizer == "sgd" else "Adam"
        warm = f", linear warm-up over {t.warmup_steps} steps" if t.warmup_steps else ""
        text += (f" Model: {m.backbone} (output stride {m.output_stride}, {weights}) with a {m.head} head per task; "
                 f"{opt}, lr {t.lr:g}{warm}.")
    return text


def fill_report(cfg: Any, runs: Sequence[Any], rep: Report) -> None:
    """Adds the balancing tables and figures to `rep`, from the cells' stored values and series only."""
    records, tasks = _records(runs), _tasks(runs)
    dense = any(t.kind in DENSE_METRICS for t in tasks)
    cols, heads = columns(tasks), headlines(tasks)
    perf = performance(records, cols)
    baselines = single_task_values(records, cols) if any(r.task is not None for r in records) else None
    measures = [m for m in cfg.measures.which if any(m in r.trajectories for r in records)]
    published = _published(cfg.data.dataset)
    rep.text(_setting(cfg, dense, len({r.seed for r in runs})))
    if published is None:
        rep.text(f"No published numbers: {cfg.data.dataset} is mtlens's procedural dense benchmark (rendered scenes "
                 "with known factors), not NYU-v2 or CityScapes; seed 004's tables are shown beside runs on the real "
                 "benchmarks only.")
    rep.section("Test performance relative to equal weighting (seed 004 Tables 1-3 layout)")
    note = (f"↑ better, ↓ worse than the baseline by more than {THRESHOLD} (seed 004 Table 1's rule, on every "
            "metric in its own unit); − comparable. Mean ± std over seeds.")
    if baselines is not None:
        note += (" Δm%: the relative gain over the single-task runs, every metric weighed equally (Maninis et al. "
                 "2019; higher is better).")
        zero = zero_baselines(baselines, cols)
        if zero:
            note += f" Δm% is undefined (—) where a single-task baseline is 0 (it divides by it): {', '.join(zero)}."
    rep.table("Test performance per method", ["method"] + header(cols, tasks) + (["Δm%"] if baselines is not None else []),
              performance_rows(perf, cols, baselines), note=note)
    if published is not None:
        rep.published_table(published[0])
    rep.section("Feature-level relative to parameter-level gradients (Table 4 layout)")
    rep.table("Feature level relative to parameter level", ["method"] + header(cols, tasks, arrows=False),
              feature_vs_param_rows(perf, cols))
    if published is not None:
        rep.published_table(published[1])
    rep.section("Ranking similarity of each measure with test performance (Tables 5-7 layout)")
    rep.table("Ranking similarity S (|S − 0.5|)", ["measure"] + header(heads, tasks, arrows=False) + ["mean"],
              ranking_rows(records, heads, measures, cfg.measures.last),
              note=f"Each method's measure score is the mean of its last {cfg.measures.last} recorded values "
                   "(parameter level); per task its headline metric" + (" (segmentation mIoU, depth absolute error, "
                   "normal mean angle, as seed 004 Tables 6-7)" if dense else "") + ". The paper reports S in %.")
    if published is not None:
        rep.published_table(published[2])
    rep.section("Trajectories relative to the baseline (seed 004 Figs. 3-5)")
    for m in measures:
        fig = trajectory_figure(records, m)
        if fig is not None:
            rep.figure(f"{m.upper()} relative to equal weighting", fig,
                       "Parameter level, mean over seeds, moving average over 1/10 of the run (seed 004 App. 8).")
