"""Figures of what a representation holds (seed 000 Figs. 5-12, seed 002): reconstruction grids, latent
traversals, UMAP embeddings coloured by each true factor, PCA spectra and similarity matrices. Each `*_figure`
function takes plain arrays and returns a matplotlib Figure (a report embeds it); each `plot_*` writes one
PNG and returns its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtlens.errors import MtlensError

DPI = 110


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # a Figure without pyplot: no global state, no display backend

    return Figure(figsize=(width, height), layout="constrained")


def _np(a: Any) -> np.ndarray:
    return np.asarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a)


def _show(ax: Any, image: np.ndarray) -> None:
    """Draws one image [C, H, W] in [0, 1] (grey for one channel) without axes."""
    img = np.clip(_np(image), 0.0, 1.0)
    if img.ndim != 3:
        raise MtlensError(f"an image must be [C, H, W], got shape {img.shape}")
    if img.shape[0] == 1:
        ax.imshow(img[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(np.transpose(img[:3], (1, 2, 0)), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    return out


def reconstruction_figure(inputs: Any, rows: Mapping[str, Any], title: str | None = None) -> Any:
    """Returns the grid of seed 000 Figs. 6 / 9: the input row, then one row of reconstructions per encoder."""
    x = _np(inputs)
    labelled = [("input", x)] + [(label, _np(r)) for label, r in rows.items()]
    for label, r in labelled:
        if r.shape != x.shape:
            raise MtlensError(f"reconstructions {label!r} have shape {r.shape}, the inputs {x.shape}")
    n = x.shape[0]
    fig = _figure(1.0 * n + 1.2, 1.0 * len(labelled) + (0.4 if title else 0.1))
    axes = fig.subplots(len(labelled), n, squeeze=False)
    for i, (label, r) in enumerate(labelled):
        for j in range(n):
            _show(axes[i, j], r[j])
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def traversal_figure(image: Any, reconstruction: Any, values: Any, images: Any, title: str | None = None) -> Any:
    """Returns one traversal grid (seed 000 Fig. 7): input and reconstruction, then a row per swept latent.

    `values` [d, steps] are the swept values of each latent, `images` [d, steps, C, H, W] the decoded images.
    """
    vals, imgs = _np(values), _np(images)
    if imgs.ndim != 5 or vals.shape != imgs.shape[:2]:
        raise MtlensError(f"traversal images must be [d, steps, C, H, W] with values [d, steps], got {imgs.shape} and {vals.shape}")
    d, steps = vals.shape
    fig = _figure(0.62 * steps + 1.3, 0.62 * (d + 2) + (0.5 if title else 0.2))
    axes = fig.subplots(d + 2, steps, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for row, (label, img) in enumerate((("input", image), ("recon", reconstruction))):
        axes[row, 0].axis("on")
        _show(axes[row, 0], img)
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    for k in range(d):
        for s in range(steps):
            axes[k + 2, s].axis("on")
            _show(axes[k + 2, s], imgs[k, s])
        axes[k + 2, 0].set_ylabel(f"z{k + 1}\n[{vals[k, 0]:.2g}, {vals[k, -1]:.2g}]", rotation=0, ha="right",
                                  va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def embedding_figure(coords: Mapping[str, Any], factors: Any, factor_names: Sequence[str], title: str | None = None) -> Any:
    """Returns seed 000 Figs. 5 / 8: one column per encoder's 2-D embedding, one row per true factor's colouring."""
    f = _np(factors)
    if f.ndim != 2 or f.shape[1] != len(factor_names):
        raise MtlensError(f"factors must be [N, {len(factor_names)}] (one column per name), got {f.shape}")
    labels = list(coords)
    pts = {k: _np(v) for k, v in coords.items()}
    for label, p in pts.items():
        if p.shape != (f.shape[0], 2):
            raise MtlensError(f"embedding {label!r} has shape {p.shape}; expected [{f.shape[0]}, 2], one point per factor row")
    fig = _figure(2.4 * len(labels) + 0.6, 2.2 * len(factor_names) + (0.4 if title else 0.1))
    axes = fig.subplots(len(factor_names), len(labels), squeeze=False)
    for i, name in enumerate(factor_names):
        for j, label in enumerate(labels):
            ax = axes[i, j]
            sc = ax.scatter(pts[label][:, 0], pts[label][:, 1], c=f[:, i], s=3, cmap="viridis", linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
        fig.colorbar(sc, ax=axes[i, -1], fraction=0.08, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def pca_spectra_figure(explained: Mapping[str, Any], effective: Mapping[str, float] | None = None,
                       title: str | None = None) -> Any:
    """Returns the PCA spectrum of each representation (explained-variance ratio per component, log scale)."""
    fig = _figure(5.2, 3.4)
    ax = fig.subplots()
    for label, ratio in explained.items():
        r = _np(ratio)
        name = label if effective is None or label not in effective else f"{label} (PR {effective[label]:.2f})"
        ax.plot(np.arange(1, len(r) + 1), np.clip(r, 1e-12, None), marker="o", ms=3, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax.legend(fontsize=7)
    ax.set_title(title or "PCA spectrum of each representation", fontsize=10)
    return fig


def similarity_figure(labels: Sequence[str], matrix: Any, title: str = "") -> Any:
    """Returns a labelled heat map of a pairwise similarity matrix (CKA, mean CCA) between representations."""
    m = _np(matrix)
    if m.shape != (len(labels), len(labels)):
        raise MtlensError(f"a similarity matrix for {len(labels)} labels must be square, got {m.shape}")
    fig = _figure(1.0 + 0.75 * len(labels), 0.8 + 0.7 * len(labels))
    ax = fig.subplots()
    im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="magma")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w" if m[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_reconstructions(inputs: Any, rows: Mapping[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Writes `reconstruction_figure` as a PNG; returns its path."""
    return _save(reconstruction_figure(inputs, rows, title), path)


def plot_traversal(image: Any, reconstruction: Any, values: Any, images: Any, path: str | Path,
                   title: str | None = None) -> Path:
    """Writes `traversal_figure` as a PNG; returns its path."""
    return _save(traversal_figure(image, reconstruction, values, images, title), path)


def plot_embeddings(coords: Mapping[str, Any], factors: Any, factor_names: Sequence[str], path: str | Path,
                    title: str | None = None) -> Path:
    """Writes `embedding_figure` as a PNG; returns its path."""
    return _save(embedding_figure(coords, factors, factor_names, title), path)


def plot_pca_spectra(explained: Mapping[str, Any], path: str | Path, effective: Mapping[str, float] | None = None,
                     title: str | None = None) -> Path:
    """Writes `pca_spectra_figure` as a PNG; returns its path."""
    return _save(pca_spectra_figure(explained, effective, title), path)


def plot_similarity(labels: Sequence[str], matrix: Any, path: str | Path, title: str = "") -> Path:
    """Writes `similarity_figure` as a PNG; returns its path."""
    return _save(similarity_figure(labels, matrix, title), path)
