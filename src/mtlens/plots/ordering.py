"""Figures of seed 003 from plain numbers: layer usage of a soft-ordering model and the experiments' curves.

- `plot_layer_paths` (Fig. 4d): per task, the scale of every layer at every depth as shading, with the
  strongest path (the most used layer at each depth) drawn.
- `plot_layer_usage` (Figs. 6b, 7a-b): per layer, its usage at each depth across tasks (median and the band
  between the 10th and 90th percentiles); an identity layer is drawn as "identity".
- `plot_fitting` (Fig. 2), `plot_relative_error` (Figs. 4a, 6a), `plot_error_curves` (Fig. 5b) and
  `plot_scale_trace` (Fig. 4b-c) draw the experiments' results.

Every function takes arrays or dicts, writes one PNG and returns its path.
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
    return _save(fig, path)


def plot_layer_usage(source: Any, path: str | Path, title: str = "") -> Path:
    """Writes Figs. 6b / 7a-b: per layer, its scale at each depth across tasks (median, 10-90% band); returns the path."""
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
    return _save(fig, path)


def plot_fitting(accuracy: Mapping[str, Mapping[int, Sequence[float]]], path: str | Path, title: str = "") -> Path:
    """Writes Fig. 2: training accuracy vs samples per task for each variant (mean and spread over seeds)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
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
    return _save(fig, path)


def plot_relative_error(relative: Mapping[str, Mapping[int, Sequence[float]]], path: str | Path, title: str = "") -> Path:
    """Writes Figs. 4a / 6a: each variant's error relative to parallel ordering vs the number of tasks."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for variant, by_k in relative.items():
        ks = sorted(by_k)
        ax.errorbar(ks, [np.mean(by_k[k]) for k in ks], yerr=[np.std(by_k[k]) for k in ks], marker="o", ms=3,
                    capsize=2, label=variant)
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("number of tasks")
    ax.set_ylabel("error / parallel-ordering error")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_error_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[Sequence[float]]]], path: str | Path,
                      title: str = "") -> Path:
    """Writes Fig. 5b: mean test error over tasks by iteration per variant (curves: variant -> (iterations, per seed))."""
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
    return _save(fig, path)


def plot_scale_trace(trace: Mapping[str, Sequence[Any]], path: str | Path, title: str = "") -> Path:
    """Writes Fig. 4b-c: per depth, the distance between tasks' scales and the largest scale, by iteration."""
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
    return _save(fig, path)
