"""The `geometry` study (seed 002's representation analysis on seed 000's encoders): which factors and tasks each
encoder keeps, how many dimensions it uses, and how alike the encoders' representations are.

One cell per (seed, encoder): the cell trains the encoder (a hard-sharing model as that study trains it, with
`train`; or an auto-encoder with `autoencoder`), encodes `points` test images (the same images in every cell)
and records its effective dimensionality (participation ratio), PCA spectrum and the cross-validated linear
decodability of each factor and each task. It keeps the codes in its artifacts; the report computes CCA,
SVCCA and linear CKA between every pair of encoders of one seed from them, so no cell waits for another.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from mtlens.studies.base import StudyConfig
from mtlens.studies.common import DataConfig, ModelConfig, check_data
from mtlens.studies.engine import Cell, CellContext, Study
from mtlens.studies.registry import STUDIES
from mtlens.studies.representation.geometry import SIMILARITIES, encoder_geometry
from mtlens.studies.representation.images import ImageSplit, encode_split
from mtlens.studies.representation.study_parts import (AutoencoderConfig, check_count, check_single_tasks, cell_data,
                                                       save_arrays, split_sizes, train_cell_autoencoder,
                                                       train_hard_sharing_encoder)
from mtlens.models.probes import as_encoder

Encoder = Literal["random", "single_task", "multi_head", "one_head", "ae", "vae", "factor_vae"]
Similarity = Literal["cca", "svcca", "cka"]


class GeometryConfig(StudyConfig):
    """The geometry study's config (presets: mtlens/configs/geometry/*.yaml)."""

    study: Literal["geometry"] = "geometry"
    encoders: list[Encoder] = Field(default_factory=lambda: ["random", "single_task", "multi_head", "ae"], min_length=1)
    single_tasks: list[int] = Field(default_factory=lambda: [0], min_length=1)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    points: int | None = Field(None, ge=2)
    folds: int = Field(5, ge=2)
    similarities: list[Similarity] = Field(default_factory=lambda: ["cca", "svcca", "cka"])

    cell_fields: ClassVar[frozenset[str]] = frozenset({"encoders", "single_tasks", "similarities"})


def check(cfg: GeometryConfig) -> None:
    """Raises one line for task indices or image counts the splits do not hold."""
    check_single_tasks(cfg.single_tasks, cfg.data.n_tasks)
    dataset, _ = check_data(cfg.data, cfg.data_dir, factors=True)
    sizes = split_sizes(cfg.data, dataset)
    check_count("autoencoder.train_images", cfg.autoencoder.train_images, sizes["train"], "training")
    check_count("points", cfg.points, sizes["test"], "test")


def cells(cfg: GeometryConfig) -> list[Cell]:
    """Returns one cell per seed and encoder (and trained task, for the single-task encoders)."""
    return [Cell(seed, {"encoder": enc, "task": task}, f"seed{seed}/{enc}" + ("" if task is None else f"/task_{task}"))
            for seed in cfg.seeds for enc in cfg.encoders
            for task in (cfg.single_tasks if enc == "single_task" else [None])]


def points_rows(n_test: int, points: int | None) -> np.ndarray:
    """Returns the test rows every cell encodes: all of them, or `points` seeded ones (sorted)."""
    if points is None:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(0).choice(n_test, points, replace=False))


def run_cell(cfg: GeometryConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Trains one encoder and measures its codes of the test points; returns its geometry values."""
    enc = cell.params["encoder"]
    data = cell_data(ctx, cfg.data, cfg.data_dir, cfg.autoencoder.train_images)
    if enc in ("ae", "vae", "factor_vae"):
        model, values = train_cell_autoencoder(enc, data, cfg.autoencoder, cfg.train, cell.seed, ctx)
        encoder = as_encoder(model)
    else:
        encoder, values = train_hard_sharing_encoder(enc, cell.params["task"], data, cfg.model, cfg.train, cell.seed, ctx)
    test = data.splits["test"]
    rows = points_rows(len(test), cfg.points)
    idx = test.indices[rows]
    codes = encode_split(encoder, ImageSplit(data.dataset, idx), cfg.train.eval_batch_size, device=cfg.train.device)
    geo = encoder_geometry(cell.name, codes, data.dataset, idx, test.targets[rows].numpy(), data.task_set.names,
                           [t.kind for t in data.task_set.tasks], folds=cfg.folds, seed=cell.seed)
    save_arrays(ctx, codes=codes, indices=idx, explained_ratio=geo.explained_ratio)
    return {**values, **geo.values}


def report(cfg: GeometryConfig, runs: list[Any], rep: Any) -> None:
    """Per-encoder geometry, the PCA spectra and the pairwise similarity tables (mean ± std over seeds)."""
    from mtlens.studies.representation.reports import fill_geometry

    fill_geometry(cfg, runs, rep)


STUDIES.add(Study("geometry", GeometryConfig, cells, run_cell, report,
                  title="Representation geometry of multi-task, single-task, random and auto-encoder encoders "
                        "(seeds 002, 000)", check=check))

__all__ = ["GeometryConfig", "SIMILARITIES", "points_rows"]
