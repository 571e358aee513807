"""UMAP 2-D embeddings of test codes (seed 000 §4.2.1, App. D.1; Figs. 5, 8): one per encoder, coloured by
each true factor. umap-learn is an optional extra (`pip install mtlens[umap]`), imported only when used."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._utils import as_codes
from mtlens.studies.representation.images import ImageSplit, encode_split

INSTALL_HINT = "UMAP embeddings need umap-learn: pip install mtlens[umap]"


def _umap() -> Any:
    try:
        import umap
    except ImportError:
        raise MtlensError(INSTALL_HINT) from None
    return umap


def umap_embedding(codes: Any, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """Returns the 2-D UMAP embedding [N, 2] of codes [N, d] (McInnes et al. 2018; umap-learn's defaults).

    A fixed `random_state` makes umap-learn deterministic (and single-threaded).
    """
    arr = as_codes(codes, "codes")
    if arr.shape[0] <= n_neighbors:
        raise MtlensError(f"UMAP with n_neighbors={n_neighbors} needs more than {n_neighbors} points, got {arr.shape[0]}")
    reducer = _umap().UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, random_state=int(seed))
    with warnings.catch_warnings():
        # umap-learn says that a random_state forces one thread: that is the point of passing one.
        warnings.filterwarnings("ignore", message=".*n_jobs.*overridden", category=UserWarning)
        return np.asarray(reducer.fit_transform(arr.astype(np.float32)), dtype=np.float64)


@dataclass
class Embeddings:
    """Per encoder label the embedding [N, 2] of the same N test images, and their factor values [N, K]."""

    coords: dict[str, np.ndarray]
    factor_values: np.ndarray
    factor_names: tuple[str, ...]
    rows: np.ndarray


def embedding_cell(encoders: Mapping[str, nn.Module], images: ImageSplit, n_points: int = 2000, seed: int = 0,
                   batch_size: int = 64, device: str = "auto", n_neighbors: int = 15, min_dist: float = 0.1) -> Embeddings:
    """Returns the UMAP embeddings of `n_points` seeded test images under each encoder (the varying factors only)."""
    if not encoders:
        raise MtlensError("embedding_cell needs at least one encoder")
    _umap()  # fail before encoding anything when umap-learn is missing
    n = min(n_points, len(images))
    rows = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    subset = ImageSplit(images.dataset, images.indices[rows], cache=False)
    if images.images is not None:
        subset.images = images.images[rows]
    coords = {label: umap_embedding(encode_split(enc, subset, batch_size, device), seed, n_neighbors, min_dist)
              for label, enc in encoders.items()}
    varying = [k for k, size in enumerate(images.dataset.factor_sizes) if size > 1]
    values = images.dataset.factor_values(subset.indices)[:, varying]
    names = tuple(images.dataset.factor_names[k] for k in varying)
    return Embeddings(coords, values, names, rows)
