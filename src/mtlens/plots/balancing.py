"""The balancing study's report (seed 004): performance vs equal weighting, feature vs parameter level,
challenge-measure trajectories relative to the baseline, and ranking similarity."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtlens.data.tasks import TaskSpec
from mtlens.measures.challenge import ranking_similarity, trajectory_score

THRESHOLD = 0.01  # seed 004 Table 1: changes within 0.01 of the baseline count as comparable


def _key(spec: TaskSpec) -> str:
    return f"test/{spec.name}/{'mse' if spec.kind == 'regression' else 'acc'}"


def _lower_is_better(spec: TaskSpec) -> bool:
    return spec.kind == "regression"


def performance(records: Sequence[Any], tasks: Sequence[TaskSpec]) -> dict[tuple[str, str], dict[str, float]]:
    """Returns (method, level) -> task -> test value, averaged over the finished seeds."""
    acc: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.status == "finished":
            for spec in tasks:
                if _key(spec) in r.values:
                    acc[(r.method, r.level)][spec.name].append(r.values[_key(spec)])
    return {k: {t: float(np.mean(v)) for t, v in d.items()} for k, d in acc.items()}


def _marked(value: float, base: float, spec: TaskSpec) -> str:
    diff = value - base
    if abs(diff) <= THRESHOLD:
        return f"{value:.4f} (−)"
    better = diff < 0 if _lower_is_better(spec) else diff > 0
    return f"{value:.4f} ({'↑' if better else '↓'}{abs(diff):.3f})"


def performance_table(perf: dict[tuple[str, str], dict[str, float]], tasks: Sequence[TaskSpec]) -> list[str]:
    """Returns Markdown lines: each parameter-level method's test values, marked against equal weighting."""
    base = perf.get(("ew", "param"), {})
    head = "| method | " + " | ".join(f"{t.name} ({'↓' if _lower_is_better(t) else '↑'})" for t in tasks) + " |"
    lines = [head, "|---" * (len(tasks) + 1) + "|"]
    for (method, level), vals in perf.items():
        if level != "param":
            continue
        cells = []
        for t in tasks:
            if t.name not in vals:
                cells.append("—")
            elif method == "ew" or t.name not in base:
                cells.append(f"{vals[t.name]:.4f}")
            else:
                cells.append(_marked(vals[t.name], base[t.name], t))
        lines.append(f"| {'baseline (ew)' if method == 'ew' else method} | " + " | ".join(cells) + " |")
    return lines


def feature_vs_param_table(perf: dict[tuple[str, str], dict[str, float]], tasks: Sequence[TaskSpec]) -> list[str]:
    """Returns Markdown lines: feature-level test values relative to the same method at parameter level (%)."""
    lines = ["| method | " + " | ".join(t.name for t in tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for (method, level), vals in perf.items():
        param = perf.get((method, "param"))
        if level != "feature" or param is None:
            continue
        cells = []
        for t in tasks:
            if t.name in vals and t.name in param and param[t.name] != 0:
                rel = (vals[t.name] - param[t.name]) / abs(param[t.name])
                better = rel < 0 if _lower_is_better(t) else rel > 0
                # RGW and other gradient-independent weightings are linear: both levels give the same update.
                cells.append("0.0%" if abs(rel) < 5e-4 else f"{100 * rel:+.1f}%{' ↑' if better else ' ↓'}")
            else:
                cells.append("—")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def measure_scores(records: Sequence[Any], measure: str, last: int) -> dict[str, float]:
    """Returns method -> the measure's score (mean of the last `last` values), averaged over seeds (param level)."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r.status == "finished" and r.level == "param" and r.trajectories.get(measure):
            acc[r.method].append(trajectory_score([v for _, v in r.trajectories[measure]], last))
    return {m: float(np.mean(v)) for m, v in acc.items()}


def ranking_table(records: Sequence[Any], tasks: Sequence[TaskSpec], measures: Sequence[str], last: int) -> tuple[list[str], dict]:
    """Returns Markdown lines and the values: per measure and task, S and |S - 0.5| over the methods."""
    perf = {m: v for (m, lv), v in performance(records, tasks).items() if lv == "param"}
    out: dict[str, dict[str, tuple[float, float]]] = {}
    lines = ["| measure | " + " | ".join(t.name for t in tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
    for measure in measures:
        scores = measure_scores(records, measure, last)
        methods = [m for m in scores if m in perf]
        if len(methods) < 2:
            continue
        row = {}
        for t in tasks:
            rs = ranking_similarity([scores[m] for m in methods], [perf[m][t.name] for m in methods])
            row[t.name] = (rs.similarity, rs.symmetric)
        out[measure] = row
        mean_sym = float(np.mean([v[1] for v in row.values()]))
        lines.append(f"| {measure.upper()} | " + " | ".join(f"{s:.3f} ({a:.3f})" for s, a in row.values())
                     + f" | ({mean_sym:.3f}) |")
    return lines, out


def _smooth(y: np.ndarray) -> np.ndarray:
    # seed 004 §5.4: moving average with a window of 1/10 of the trajectory length
    w = max(1, len(y) // 10)
    return np.convolve(y, np.ones(w) / w, mode="valid")


def trajectory_figure(records: Sequence[Any], measure: str, path: Path) -> Path | None:
    """Writes the measure's trajectories relative to equal weighting (param level, mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[dict[int, float]]] = defaultdict(list)
    for r in records:
        if r.status == "finished" and r.level == "param" and r.trajectories.get(measure):
            curves[r.method].append(dict(r.trajectories[measure]))
    if "ew" not in curves:
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
        rel = _smooth(np.array([c[s] - base[s] for s in steps]))
        ax.plot(steps[len(steps) - len(rel):], rel, label=method, lw=1)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{measure.upper()} − baseline")
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_balancing_report(records: Sequence[Any], tasks: Sequence[TaskSpec], out_dir: Path, last: int = 50,
                           title: str = "") -> dict[str, Path]:
    """Writes report.md and one trajectory PNG per measure into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    perf = performance(records, tasks)
    measures = sorted({m for r in records for m in r.trajectories})
    rank_lines, _ = ranking_table(records, tasks, measures, last)
    lines = [f"# {title}" if title else "# MTL methods", "",
             "## Test performance relative to equal weighting (seed 004 Tables 1-3 layout)", "",
             f"↑ better, ↓ worse than the baseline by more than {THRESHOLD}; − comparable. Mean over seeds.", "",
             *performance_table(perf, tasks), "",
             "## Feature-level relative to parameter-level gradients (Table 4 layout)", "",
             *feature_vs_param_table(perf, tasks), "",
             f"## Ranking similarity S (and |S − 0.5|) of each measure with test performance (Tables 5-7 layout)", "",
             f"Each method's measure score is the mean of its last {last} recorded values (parameter level).", "",
             *rank_lines]
    failed = [r for r in records if r.status != "finished"]
    if failed:
        lines += ["", "Failed runs: " + ", ".join(f"{r.method}/{r.level} seed {r.seed} ({r.run_id})" for r in failed)]
    paths = {"md": out_dir / "report.md"}
    paths["md"].write_text("\n".join(lines) + "\n")
    for m in measures:
        p = trajectory_figure(records, m, out_dir / f"trajectory_{m}.png")
        if p is not None:
            paths[m] = p
    return paths
