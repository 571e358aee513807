"""Representation geometry of encoders (seed 002) on a factor dataset's test images: one cell per encoder
(effective dimensionality, PCA spectrum, linear decodability of each factor and each task) and one for the
similarity of every pair of encoders (CCA, SVCCA, linear CKA)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mtlens.data.base import FactorDataset
from mtlens.errors import MtlensError
from mtlens.measures.geometry import cca, effective_dimensionality, linear_cka, linear_decodability, pca_spectrum, svcca

#: Factors whose values have no order (decoded by classification accuracy); the others by R^2 of their value.
CATEGORICAL_FACTORS = frozenset({"shape", "object_shape", "object_color", "background_color"})


@dataclass
class EncoderGeometry:
    """One encoder's geometry: flat values for the store, and its PCA spectrum for the figure."""

    label: str
    values: dict[str, float]
    explained_ratio: np.ndarray


def encoder_geometry(label: str, codes: np.ndarray, dataset: FactorDataset, indices: np.ndarray,
                     targets: np.ndarray | None = None, task_names: Sequence[str] | None = None,
                     task_kinds: Sequence[str] | str = "regression", folds: int = 5, seed: int = 0) -> EncoderGeometry:
    """Returns the effective dimensionality, PCA spectrum and per-factor / per-task linear decodability of codes.

    `codes` [N, d] are the encoder's codes of `dataset`'s images at `indices`; `targets` [N, T] the task targets
    of the same images. Factors in CATEGORICAL_FACTORS are decoded by accuracy, the others by R^2 of their value.
    """
    idx = dataset.check_indices(indices)
    if len(idx) != len(codes):
        raise MtlensError(f"{len(codes)} code rows for {len(idx)} image indices; pass one code row per image")
    spectrum = pca_spectrum(codes)
    values = {"effective_dimensionality": effective_dimensionality(codes).score}
    varying = [k for k, size in enumerate(dataset.factor_sizes) if size > 1]
    names = [dataset.factor_names[k] for k in varying]
    kinds = ["classification" if n in CATEGORICAL_FACTORS else "regression" for n in names]
    ids, vals = dataset.factors(idx)[:, varying], dataset.factor_values(idx)[:, varying]
    columns = np.stack([ids[:, j] if kinds[j] == "classification" else vals[:, j] for j in range(len(varying))], 1)
    factors = linear_decodability(codes, columns, kinds, names, folds, seed)
    values.update({f"decodability/factor/{k}": v for k, v in zip(names, factors.scores)})
    values["decodability/factor_mean"] = factors.score
    if targets is not None:
        tasks = linear_decodability(codes, targets, task_kinds, task_names, folds, seed)
        values.update({f"decodability/task/{k}": v for k, v in zip(tasks.names, tasks.scores)})
        values["decodability/task_mean"] = tasks.score
    return EncoderGeometry(label, values, spectrum.explained_ratio)


SIMILARITIES = {"cca": lambda a, b: cca(a, b).score, "svcca": lambda a, b: svcca(a, b).score,
                "cka": lambda a, b: linear_cka(a, b).score}


def pairwise_similarity(codes: Mapping[str, np.ndarray], measures: Sequence[str] = ("cca", "svcca", "cka")) -> dict[str, np.ndarray]:
    """Returns per measure the symmetric matrix [E, E] of similarities between the encoders' codes (same images)."""
    labels = list(codes)
    unknown = [m for m in measures if m not in SIMILARITIES]
    if unknown:
        raise MtlensError(f"unknown similarity {unknown[0]!r}; choose from {', '.join(SIMILARITIES)}")
    out = {}
    for m in measures:
        mat = np.eye(len(labels))
        for i, a in enumerate(labels):
            for j in range(i + 1, len(labels)):
                mat[i, j] = mat[j, i] = SIMILARITIES[m](codes[a], codes[labels[j]])
        out[m] = mat
    return out
