"""The hard-sharing study's report: per-task test MSE per variant (mean ± std over seeds) as CSV, Markdown, PNG."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

VARIANT_ORDER = ("multi_head", "one_head", "single_task", "random")


def per_task_table(records: Sequence[Any], task_names: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """Returns variant -> task -> test MSE per seed; a single-task model counts only for its own task."""
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.status != "finished":
            continue
        for i, name in enumerate(task_names):
            if r.variant == "single_task" and r.task != i:
                continue
            value = r.values.get(f"test/{name}/mse")
            if value is not None:
                table[r.variant][name].append(float(value))
    return table


def _fmt(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def metric_table(records: Sequence[Any], metric_names: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """Returns metric -> variant -> values over runs (single-task: one value per task model and seed)."""
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.status != "finished":
            continue
        for name in metric_names:
            if name in r.values:
                table[name][r.variant].append(float(r.values[name]))
    return table


def _metric_lines(records: Sequence[Any], metrics: Sequence[str], variants: Sequence[str]) -> list[str]:
    names = sorted({k for r in records for k in r.values if k in metrics or any(k.startswith(m + "/") for m in metrics)},
                   key=lambda k: (k.split("/")[0] not in metrics, k))
    headline = [n for n in names if n in metrics or n.count("/") == 1 and n.split("/")[1] in
                ("disentanglement", "completeness", "informativeness_test", "modularity", "explicitness_test")]
    if not headline:
        return []
    table = metric_table(records, headline)
    lines = ["", "Disentanglement of each encoder (mean ± std over runs; single-task: over every task model, "
             "[min, max] beside it).", "", "| metric | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
    for name in headline:
        cells = []
        for v in variants:
            vals = table[name].get(v, [])
            cell = _fmt(vals)
            if v == "single_task" and len(vals) > 1:
                cell += f" [{min(vals):.3f}, {max(vals):.3f}]"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def write_report(records: Sequence[Any], task_names: Sequence[str], out_dir: Path, title: str = "",
                 metrics: Sequence[str] = ()) -> dict[str, Path]:
    """Writes summary.csv, summary.md and test_mse.png into `out_dir`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    table = per_task_table(records, task_names)
    variants = [v for v in VARIANT_ORDER if v in table] + [v for v in table if v not in VARIANT_ORDER]
    paths = {"csv": out_dir / "summary.csv", "md": out_dir / "summary.md", "png": out_dir / "test_mse.png"}
    with open(paths["csv"], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "task", "n_seeds", "test_mse_mean", "test_mse_std"])
        for v in variants:
            for t in task_names:
                vals = table[v].get(t, [])
                w.writerow([v, t, len(vals), np.mean(vals) if vals else "", np.std(vals) if vals else ""])
    lines = [f"# {title}" if title else "# Hard sharing", "", "Per-task test MSE (mean ± std over seeds).", "",
             "| task | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
    for t in task_names:
        lines.append(f"| {t} | " + " | ".join(_fmt(table[v].get(t, [])) for v in variants) + " |")
    means = [[float(np.mean(table[v][t])) for t in task_names if table[v].get(t)] for v in variants]
    lines.append("| **mean over tasks** | " + " | ".join(f"{np.mean(m):.3f}" if m else "—" for m in means) + " |")
    lines += _metric_lines(records, metrics, variants)
    failed = [r for r in records if r.status != "finished"]
    if failed:
        lines += ["", "Failed runs: " + ", ".join(f"{r.run_id} ({r.variant})" for r in failed)]
    paths["md"].write_text("\n".join(lines) + "\n")

    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(task_names) * len(variants) / 2), 3.5))
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(task_names))
    for i, v in enumerate(variants):
        mean = [np.mean(table[v][t]) if table[v].get(t) else np.nan for t in task_names]
        std = [np.std(table[v][t]) if table[v].get(t) else 0.0 for t in task_names]
        ax.bar(x + i * width, mean, width, yerr=std, label=v.replace("_", "-"), capsize=2)
    ax.set_xticks(x + width * (len(variants) - 1) / 2, [t.replace("task_", "T") for t in task_names])
    ax.set_ylabel("test MSE")
    ax.set_title(title or "Per-task test MSE", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=120)
    plt.close(fig)
    return paths
