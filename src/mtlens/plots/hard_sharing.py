"""The hard-sharing study's report (seed 000): per-task test MSE per variant, and Table 5's disentanglement
metrics (mean ± std over seeds) beside the published values for the same dataset."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtlens.plots.report import Report, mean_std

SOFT_SHARING = ("cross_stitch", "mmoe", "mtan", "cgc", "ple", "dselect_k", "ltb")
VARIANT_ORDER = ("multi_head", "one_head", "single_task", "random", *SOFT_SHARING)
# Table 5's sub-tables: (published key, our metric key, title)
TABLE5 = (("table_5a", "mig", "MIG"), ("table_5b", "factor_vae", "FactorVAE score"),
          ("table_5c", "dci/completeness", "completeness (DCI)"), ("table_5d", "dci/disentanglement", "disentanglement (DCI)"),
          ("table_5e", "dci/informativeness_test", "informativeness (DCI)"), ("table_5f", "sap", "SAP score"))
TABLE5_ROWS = ("random", "single-mean", "single-max", "single-min", "multi-head", "one-head",
               *(v.replace("_", "-") for v in SOFT_SHARING))
PAPER_DATASET = {"dsprites": "dSprites", "shapes3d": "Shapes3D", "mpi3d_toy": "MPI3D", "mpi3d_realistic": "MPI3D",
                 "mpi3d_real": "MPI3D"}


def task_names(runs: Sequence[Any]) -> list[str]:
    """Returns the task names the cells noted (else those found in their test values)."""
    for r in runs:
        if r.notes.get("tasks"):
            return [name for name, _ in r.notes["tasks"]]
    keys = {k.split("/")[1] for r in runs for k in r.summary if k.startswith("test/") and k.endswith("/mse")}
    return sorted(keys)


def per_task_mse(runs: Sequence[Any], tasks: Sequence[str]) -> dict[str, dict[str, list[float]]]:
    """Returns variant -> task -> test MSE per seed; a single-task model counts only for its own task."""
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        variant, own = r.params["variant"], r.params.get("task")
        for i, name in enumerate(tasks):
            if variant == "single_task" and own != i:
                continue
            value = r.summary.get(f"test/{name}/mse")
            if value is not None:
                table[variant][name].append(float(value))
    return table


def metric_by_row(runs: Sequence[Any], key: str) -> dict[str, list[float]]:
    """Returns Table 5's rows -> values over seeds (single-*: mean/max/min over a seed's task models)."""
    rows: dict[str, list[float]] = defaultdict(list)
    singles: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        if key not in r.summary:
            continue
        variant = r.params["variant"]
        if variant == "single_task":
            singles[r.seed].append(float(r.summary[key]))
        else:
            rows[variant.replace("_", "-")].append(float(r.summary[key]))
    for values in singles.values():
        rows["single-mean"].append(float(np.mean(values)))
        rows["single-max"].append(float(np.max(values)))
        rows["single-min"].append(float(np.min(values)))
    return rows


def _mse_figure(table: dict[str, dict[str, list[float]]], variants: list[str], tasks: list[str]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(tasks) * len(variants)), 3.5))
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(tasks))
    for i, v in enumerate(variants):
        mean = [np.mean(table[v][t]) if table[v].get(t) else np.nan for t in tasks]
        std = [np.std(table[v][t]) if table[v].get(t) else 0.0 for t in tasks]
        ax.bar(x + i * width, mean, width, yerr=std, label=v.replace("_", "-"), capsize=2)
    ax.set_xticks(x + width * (len(variants) - 1) / 2, [t.replace("task_", "T") for t in tasks])
    ax.set_ylabel("test MSE")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _metrics_figure(rows_by_metric: dict[str, dict[str, list[float]]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows_by_metric)
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names) + 1, 3.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = [r for r in TABLE5_ROWS if rows_by_metric[name].get(r)]
        ax.bar(range(len(rows)), [np.mean(rows_by_metric[name][r]) for r in rows],
               yerr=[np.std(rows_by_metric[name][r]) for r in rows], capsize=2, color="#4c72b0")
        ax.set_xticks(range(len(rows)), rows, rotation=45, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def fill_report(cfg: Any, runs: Sequence[Any], rep: Report) -> None:
    """Adds the hard-sharing tables and figures to `rep`, from the cells' stored values only."""
    tasks = task_names(runs)
    table = per_task_mse(runs, tasks)
    variants = [v for v in VARIANT_ORDER if v in table]
    rep.text(f"Dataset {cfg.data.dataset} with {cfg.data.n_tasks} random-MLP tasks; {len({r.seed for r in runs})} "
             f"seed(s); every cell trains {cfg.train.epochs} epochs with {cfg.method.name} ({cfg.method.level} level).")
    rep.section("Per-task test MSE (the data of seed 000 Fig. 13)")
    rows = [[t] + [mean_std(table[v].get(t, [])) for v in variants] for t in tasks]
    means = [[float(np.mean(table[v][t])) for t in tasks if table[v].get(t)] for v in variants]
    rows.append(["mean over tasks"] + [f"{np.mean(m):.3f}" if m else "—" for m in means])
    rep.table("Per-task test MSE per variant (mean ± std over seeds; single-task: each task's own model)",
              ["task"] + [v.replace("_", "-") for v in variants], rows)
    if variants:
        rep.figure("Per-task test MSE per variant", _mse_figure(table, variants, tasks),
                   "Bars: mean over seeds; whiskers: std.")
    present = [(key, metric, title) for key, metric, title in TABLE5 if any(metric in r.summary for r in runs)]
    if not present:
        return
    column = PAPER_DATASET.get(cfg.data.dataset)
    rep.section("Disentanglement of each encoder (seed 000 Table 5 layout)")
    if any(r.params["variant"] in SOFT_SHARING for r in runs):
        rep.text("Soft-sharing rows score the codes each architecture's encode returns (mtlens.models.soft_sharing): "
                 "the shared latent for mtan; every expert's latent side by side for mmoe, dselect-k, cgc and ple "
                 "(last level); every task's latent side by side for cross-stitch and ltb.")
    rep.text("Mean ± std over seeds; single-mean / max / min: over each seed's single-task models, then over seeds. "
             + (f"Published: seed 000 Table 5, {column} column." if column else
                f"No published values for dataset {cfg.data.dataset} (seed 000 reports dSprites, Shapes3D, MPI3D)."))
    by_metric = {}
    for key, metric, title in present:
        rows_ = metric_by_row(runs, metric)
        by_metric[title] = rows_
        entry = rep.published.get("tables", {}).get(key)
        paper = dict(zip(entry["columns"], zip(*entry["rows"].values()))) if entry and column else {}
        published = dict(zip(entry["rows"], paper.get(column, ()))) if paper else {}
        header = ["model", f"ours ({cfg.data.dataset})"] + ([f"paper ({column})"] if published else [])
        body = [[r, mean_std(rows_.get(r, []), 3)] + ([published.get(r, "—")] if published else [])
                for r in TABLE5_ROWS if rows_.get(r) or r in published]
        note = f"seed 000 {entry['table']} ({entry['where']})" if entry else ""
        rep.table(f"{title} of each encoder", header, body, note=f"Published: {note}." if published else "")
    rep.figure("Disentanglement metrics per encoder", _metrics_figure(by_metric),
               "Mean over seeds; whiskers: std. single-*: over the single-task models of each seed.")
