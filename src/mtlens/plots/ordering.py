"""Figures of seed 003 from plain numbers: layer usage of a soft-ordering model and the experiments' curves.

- `plot_layer_paths` (Fig. 4d): per task, the scale of every layer at every depth as shading, with the
  strongest path (the most used layer at each depth) drawn.
- `plot_layer_usage` (Figs. 6b, 7a-b): per layer, its usage at each depth across tasks (median and the band
  between the 10th and 90th percentiles); an identity layer is drawn as "identity".
- `plot_fitting` (Fig. 2), `plot_relative_error` (Figs. 4a, 6a), `plot_error_curves` (Fig. 5b) and
  `plot_scale_trace` (Fig. 4b-c) draw the experiments' results.

Every `plot_*` function takes arrays or dicts, writes one PNG and returns its path; the `*_figure` functions
return the matplotlib figure instead (a study report embeds them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtlens.errors import MtlensError


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def as_scales(source: Any) -> np.ndarray:
    """Returns scales [T, L, D] (task, layer, depth) from a soft-ordering model (its `scales()`) or an array."""
    if hasattr(source, "scales") and callable(source.scales):
        source = source.scales().detach().cpu().numpy()
    arr = np.asarray(source, dtype=np.float64)
    if arr.ndim != 3:
        raise MtlensError(f"scales must be [tasks, layers, depths], got shape {arr.shape}")
    if not np.allclose(arr.sum(1), 1.0, atol=1e-4):
        raise MtlensError("scales must sum to 1 over the layers at every depth (softmax outputs); got other sums")
    return arr


def _layer_names(n_layers: int, depth: int) -> list[str]:
    return [f"layer {j + 1}" for j in range(depth)] + ["identity"] * (n_layers - depth)


def plot_layer_paths(source: Any, path: str | Path, task_names: Sequence[str] | None = None, max_tasks: int = 10) -> Path:
    """Writes Fig. 4d: per task, shading by the scale of each layer at each depth and the strongest path; returns the path."""
    return _save(layer_paths_figure(source, task_names, max_tasks), path)


def layer_paths_figure(source: Any, task_names: Sequence[str] | None = None, max_tasks: int = 10) -> Any:
    """Returns Fig. 4d as a matplotlib figure (see `plot_layer_paths`)."""
    s = as_scales(source)
    T, L, D = s.shape
    names = list(task_names) if task_names is not None else [f"task {t}" for t in range(T)]
    shown = min(T, max_tasks)
    plt = _pyplot()
    fig, axes = plt.subplots(1, shown, figsize=(1.2 + 1.3 * shown, 0.6 + 0.55 * L), squeeze=False, sharey=True)
    for t, ax in enumerate(axes[0]):
        ax.imshow(s[t], cmap="Greys", vmin=0.0, vmax=1.0, origin="lower", aspect="auto")
        strongest = s[t].argmax(0)
        ax.plot(np.arange(D), strongest, "-o", color="tab:red", lw=2, ms=4)
        ax.set_title(names[t], fontsize=8)
        ax.set_xticks(np.arange(D), [str(k + 1) for k in range(D)])
        ax.set_xlabel("depth")
    axes[0][0].set_yticks(np.arange(L), _layer_names(L, D))
    fig.tight_layout()
    return fig


def plot_layer_usage(source: Any, path: str | Path, title: str = "") -> Path:
    """Writes Figs. 6b / 7a-b: per layer, its scale at each depth across tasks (median, 10-90% band); returns the path."""
    return _save(layer_usage_figure(source, title), path)


def layer_usage_figure(source: Any, title: str = "") -> Any:
    """Returns Figs. 6b / 7a-b as a matplotlib figure (see `plot_layer_usage`)."""
    s = as_scales(source)
    _, L, D = s.shape
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    depths = np.arange(1, D + 1)
    for j, name in enumerate(_layer_names(L, D)):
        lo, mid, hi = np.percentile(s[:, j, :], [10, 50, 90], axis=0)
        line, = ax.plot(depths, 100 * mid, marker="o", ms=3, label=name, ls="--" if name == "identity" else "-")
        ax.fill_between(depths, 100 * lo, 100 * hi, color=line.get_color(), alpha=0.15)
    ax.axhline(100 / L, color="grey", lw=0.8, ls=":")
    ax.set_xticks(depths)
    ax.set_xlabel("depth")
    ax.set_ylabel("usage (scale, %)")
    ax.set_title(title or f"layer usage across {s.shape[0]} tasks", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_fitting(accuracy: Mapping[str, Mapping[int, Sequence[float]]], path: str | Path, title: str = "") -> Path:
    """Writes Fig. 2: training accuracy vs samples per task for each variant (mean and spread over seeds)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    fitting_axes(ax, accuracy, title)
    return _save(fig, path)


def fitting_axes(ax: Any, accuracy: Mapping[str, Mapping[int, Sequence[float]]], title: str = "") -> None:
    """Draws Fig. 2's curves (variant -> n -> accuracies over seeds) into `ax`."""
    for variant, by_n in accuracy.items():
        ns = sorted(by_n)
        means = np.array([np.mean(by_n[n]) for n in ns])
        sds = np.array([np.std(by_n[n]) for n in ns])
        line, = ax.plot(ns, means, "-o", ms=3, label=variant)
        ax.fill_between(ns, means - sds, means + sds, color=line.get_color(), alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training samples per task")
    ax.set_ylabel("training accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def plot_relative_error(relative: Mapping[str, Mapping[int, Sequence[float]]], path: str | Path, title: str = "") -> Path:
    """Writes Figs. 4a / 6a: each variant's error relative to parallel ordering vs the number of tasks."""
    return _save(relative_error_figure(relative, title), path)


def relative_error_figure(relative: Mapping[str, Mapping[int, Sequence[float]]], title: str = "",
                          ylabel: str = "error / parallel-ordering error", reference: float | None = 1.0) -> Any:
    """Returns Figs. 4a / 6a as a matplotlib figure (variant -> number of tasks -> values over seeds)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    relative_axes(ax, relative, title, ylabel, reference)
    fig.tight_layout()
    return fig


def relative_axes(ax: Any, relative: Mapping[str, Mapping[int, Sequence[float]]], title: str = "",
                  ylabel: str = "error / parallel-ordering error", reference: float | None = 1.0) -> None:
    """Draws each variant's values by number of tasks (mean, bars ± std) into `ax`; says so when there are none."""
    for variant, by_k in relative.items():
        ks = sorted(k for k in by_k if len(by_k[k]))
        ax.errorbar(ks, [np.mean(by_k[k]) for k in ks], yerr=[np.std(by_k[k]) for k in ks], marker="o", ms=3,
                    capsize=2, label=variant)
    if not any(len(v) for by_k in relative.values() for v in by_k.values()):
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes, color="grey")
    if reference is not None:
        ax.axhline(reference, color="grey", lw=0.8, ls=":")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of tasks")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if relative:
        ax.legend(fontsize=7)


def plot_error_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[Sequence[float]]]], path: str | Path,
                      title: str = "") -> Path:
    """Writes Fig. 5b: mean test error over tasks by iteration per variant (curves: variant -> (iterations, per seed))."""
    return _save(error_curves_figure(curves, title), path)


def error_curves_figure(curves: Mapping[str, tuple[Sequence[int], Sequence[Sequence[float]]]], title: str = "") -> Any:
    """Returns Fig. 5b as a matplotlib figure (see `plot_error_curves`)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for variant, (iters, runs) in curves.items():
        arr = np.asarray(runs, dtype=np.float64)
        line, = ax.plot(iters, arr.mean(0), label=variant)
        if arr.shape[0] > 1:
            ax.fill_between(iters, arr.min(0), arr.max(0), color=line.get_color(), alpha=0.15)
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean test error")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_scale_trace(trace: Mapping[str, Sequence[Any]], path: str | Path, title: str = "") -> Path:
    """Writes Fig. 4b-c: per depth, the distance between tasks' scales and the largest scale, by iteration."""
    return _save(scale_trace_figure(trace, title), path)


def scale_trace_figure(trace: Mapping[str, Sequence[Any]], title: str = "") -> Any:
    """Returns Fig. 4b-c as a matplotlib figure (see `plot_scale_trace`)."""
    steps = np.asarray(trace["step"])
    dist, hard = np.asarray(trace["distance"]), np.asarray(trace["hardness"])
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for k in range(dist.shape[1]):
        axes[0].plot(steps, dist[:, k], label=f"depth {k + 1}")
        axes[1].plot(steps, hard[:, k], label=f"depth {k + 1}")
    axes[0].set_ylabel("distance between tasks' scales")
    axes[1].set_ylabel("largest scale (1 = hard order)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
