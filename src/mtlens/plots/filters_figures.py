"""The filters study's figures: Fig. 2's heatmaps, Fig. 4's distances per beta, accuracy and success vs beta,
and the success rate of every row with its confidence interval (matplotlib figures for `Report.figure`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtlens.plots.filters import MODEL_NAMES, Row, distance_matrix, log_var_matrix, nearest, published_value
from mtlens.plots.report import Report


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _labels(run: Any, n_tasks: int) -> list[str]:
    groups = run.notes.get("groups")
    if groups and len(groups) == n_tasks:
        return [str(list(g)) for g in groups]
    return [f"task {j}" for j in range(n_tasks)]


def _heatmap(ax: Any, m: np.ndarray, labels: Sequence[str] | None, xlabels: Sequence[str] | None, cmap: str,
             annotate: bool) -> Any:
    image = ax.imshow(m, cmap=cmap, aspect="auto")
    ax.set_yticks(range(m.shape[0]), labels if labels is not None else range(m.shape[0]), fontsize=7)
    ax.set_xticks(range(m.shape[1]), xlabels if xlabels is not None else range(m.shape[1]), fontsize=7,
                  rotation=45 if xlabels is not None else 0)
    if annotate and m.size <= 64:
        mid = (np.nanmax(m) + np.nanmin(m)) / 2
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6, color="w" if v < mid else "k")
    return image


def fig2_rows(rows: Sequence[Row]) -> list[Row]:
    """Returns, per layout of the sweep, its row at the beta closest to 0.1 that has a finished trial."""
    out = []
    for name in dict.fromkeys(r.params["layout_name"] for r in rows):
        mine = [r for r in rows if r.params["layout_name"] == name and r.first() is not None]
        if mine:
            beta = nearest([r.params["beta"] for r in mine], 0.1)
            out.append(next(r for r in mine if r.params["beta"] == beta))
    return out


def fig2(rows: Sequence[Row]) -> Any:
    """Returns Fig. 2's layout: per column one layout; top the L1 distances, bottom the noise log-variances."""
    plt = _plt()
    fig, axes = plt.subplots(2, len(rows), figsize=(3.4 * len(rows) + 0.6, 6.4), squeeze=False)
    for c, row in enumerate(rows):
        run = row.first()
        log_var, dist = log_var_matrix(run.summary), distance_matrix(run.summary)
        labels = _labels(run, log_var.shape[0])
        im = _heatmap(axes[0, c], dist, labels, labels, "viridis", True)
        fig.colorbar(im, ax=axes[0, c], fraction=0.046)
        q = row.params
        axes[0, c].set_title(f"{q['layout_name']}, d = {q['latent_dim']}, β = {q['beta']:g}\n"
                             f"seed {run.seed}: {'success' if run.summary.get('success') == 1.0 else 'no success'}",
                             fontsize=8)
        im = _heatmap(axes[1, c], log_var, labels, None, "magma", log_var.shape[1] <= 4)
        axes[1, c].set_xlabel("latent dimension", fontsize=7)
        fig.colorbar(im, ax=axes[1, c], fraction=0.046)
    # fixed spacing: tight_layout costs one more full draw, and the report's savefig crops the margins anyway
    fig.subplots_adjust(left=0.1, right=0.97, wspace=0.75, hspace=0.45)
    return fig


def fig4(rows: Sequence[Row]) -> Any:
    """Returns Fig. 4's layout: the distance matrix of one layout at each beta, with success and accuracy."""
    plt = _plt()
    shown = [r for r in rows if r.first() is not None]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.1 * len(shown) + 0.4, 3.2), squeeze=False)
    for ax, row in zip(axes[0], shown):
        run = row.first()
        dist = distance_matrix(run.summary)
        im = _heatmap(ax, dist, _labels(run, dist.shape[0]), None, "viridis", True)
        fig.colorbar(im, ax=ax, fraction=0.046)
        rate = row.rate()
        acc = row.values("test/mean_acc/sample")
        ax.set_title(f"β = {row.params['beta']:g}: success {rate.successes}/{rate.trials}\n"
                     f"accuracy {100 * np.mean(acc):.1f} %" if rate is not None and acc else
                     f"β = {row.params['beta']:g}", fontsize=8)
    fig.subplots_adjust(wspace=0.8)
    return fig


def versus_beta(rows: Sequence[Row]) -> Any:
    """Returns accuracy vs beta (left) and success rate with its Wilson interval vs beta (right), per layout."""
    plt = _plt()
    betas = sorted({r.params["beta"] for r in rows})
    x = {b: i for i, b in enumerate(betas)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(dict.fromkeys(r.params["layout_name"] for r in rows))
    for k, name in enumerate(names):
        mine = sorted((r for r in rows if r.params["layout_name"] == name), key=lambda r: r.params["beta"])
        colour = colours[k % len(colours)]
        for mode, style in (("sample", "-"), ("mean", "--")):
            pts = [(x[r.params["beta"]], 100 * np.mean(v)) for r in mine if (v := r.values(f"test/mean_acc/{mode}"))]
            if pts:
                left.plot(*zip(*pts), style, marker="o", color=colour, label=name if mode == "sample" else None)
        rates = [(x[r.params["beta"]] + 0.06 * (k - len(names) / 2), rate) for r in mine if (rate := r.rate())]
        if rates:
            pos, rs = zip(*rates)
            mid = np.array([100 * r.rate for r in rs])
            err = np.array([[100 * (r.rate - r.low) for r in rs], [100 * (r.high - r.rate) for r in rs]])
            right.errorbar(pos, mid, yerr=err, fmt="o-", color=colour, capsize=3, label=name)
    for ax, label in ((left, "mean test accuracy (%)"), (right, "clustering success (%)")):
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
        ax.set_xlabel("β")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    right.set_ylim(-3, 103)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.25)
    return fig


def rates(rows: Sequence[Row], rep: Report) -> Any:
    """Returns the success rate of every grouped row (Table V and sweep) with its Wilson interval."""
    plt = _plt()
    shown = [(r, rate) for r in rows if (rate := r.rate()) is not None]
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * len(shown) + 1.2))
    for i, (row, rate) in enumerate(shown):
        q = row.params
        ax.errorbar(100 * rate.rate, i, xerr=[[100 * (rate.rate - rate.low)], [100 * (rate.high - rate.rate)]],
                    fmt="o", color="#1f77b4" if q["variant"] == "filters" else "#d62728", capsize=3)
        seed = published_value(rep, "table_5", q["variant"], q["beta"]) if q["part"] == "table5" else "—"
        if seed != "—":
            ax.plot(float(seed), i, "kx")
    ax.set_yticks(range(len(shown)), [f"{r.params['part']}: {r.params['layout_name']} d{r.params['latent_dim']} "
                                      f"{MODEL_NAMES[r.params['variant']]} β={r.params['beta']:g} (n={rt.trials})"
                                      for r, rt in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(-3, 103)
    ax.set_xlabel("clustering success (%)")
    ax.grid(axis="x", alpha=0.3)
    return fig
