"""Data figures: a grid of dataset images labelled with their factor values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtlens.data.base import FactorDataset
from mtlens.errors import MtlensError


def _abbrev(name: str) -> str:
    return name if len(name) <= 8 else "_".join(part[:3] for part in name.split("_"))


def _label(ds: FactorDataset, values: np.ndarray) -> str:
    short = []
    for name, v in zip(ds.factor_names, values):
        if len(ds.factor_value_table[ds.factor_index(name)]) > 1:
            short.append(f"{_abbrev(name)}={v:.3g}")
    return "\n".join(short)


def preview_grid(ds: FactorDataset, out: str | Path, n: int = 24, seed: int = 0, cols: int = 6) -> Path:
    """Writes a PNG grid of `n` random images of `ds`, each titled with its factor values; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if n < 1:
        raise MtlensError(f"preview needs n >= 1 images, got {n}")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise MtlensError(f"preview writes PNG files; give --out a .png path, got {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds), size=min(n, len(ds)), replace=False))
    images = ds.images(idx).numpy()
    values = ds.factor_values(idx)
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.7, rows * 2.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, val in zip(axes.flat, images, values):
        ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(_label(ds, val), fontsize=5.5)
    fig.suptitle(f"{ds.name} — {ds.source}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
