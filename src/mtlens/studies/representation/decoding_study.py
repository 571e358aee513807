"""The `decoding` study (seed 000 §4.2, App. C.2, D.1-D.3): what a frozen encoder keeps of its images.

One cell per (seed, encoder): the cell trains the encoder as the hard-sharing study does (`train` is that
training; the random encoder is its seeded initialisation), freezes it, trains the Table 2 decoder on its codes
(`decoder`), and records the test reconstruction error (Table 4), the reconstructions of fixed test examples
(Figs. 6 / 9), one example's latent traversals (Fig. 7) and the UMAP embedding of test codes (Figs. 5 / 8;
umap-learn, `pip install mtlens[umap]`; `embeddings.points: 0` leaves it out). The examples and embedded
points are the same images in every cell, so the report puts every encoder's row into one grid.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from mtlens.config import Section
from mtlens.errors import MtlensError
from mtlens.studies.base import StudyConfig
from mtlens.studies.common import DataConfig, ModelConfig, check_data
from mtlens.studies.engine import Cell, CellContext, Study
from mtlens.studies.registry import STUDIES
from mtlens.studies.representation.decoding import (DecoderSettings, decoding_cell, example_rows, reconstruct,
                                                    traverse)
from mtlens.studies.representation.embeddings import embedding_cell, _umap
from mtlens.studies.representation.images import encode_split
from mtlens.studies.representation.study_parts import (HardSharingEncoder, PrefixedSink, cell_data, check_count, check_single_tasks,
                                                       save_arrays, split_sizes, to_uint8, train_hard_sharing_encoder)


class DecoderConfig(Section):
    """Decoder training (seed 000 App. C.2: 500 epochs, batches of 64, Adam lr 2e-4 halved every 100 epochs).

    `train_images`: the first N images of the training split (None: all of it); `output`: MSE on the decoder's
    linear output or its sigmoid (models/probes.py says why linear is the default)."""

    epochs: int = Field(500, ge=0)
    lr: float = Field(2e-4, gt=0)
    halve_every: int | None = Field(100, ge=1)
    batch_size: int = Field(64, ge=1)
    activation: Literal["relu", "tanh"] = "relu"
    output: Literal["linear", "sigmoid"] = "linear"
    train_images: int | None = Field(None, ge=1)
    log_every: int = Field(50, ge=0)


class FiguresConfig(Section):
    """The reconstruction grid's examples and the traversal (the seed swept -1..1 in steps of 0.1; by default
    each latent's observed range on the test split)."""

    examples: int = Field(8, ge=1)
    traversal_steps: int = Field(11, ge=2)
    traversal_range: tuple[float, float] | None = None


class EmbeddingsConfig(Section):
    """UMAP of `points` test codes per encoder (0: no embeddings); umap-learn's defaults."""

    points: int = Field(1000, ge=0)
    n_neighbors: int = Field(15, ge=2)
    min_dist: float = Field(0.1, ge=0)


class DecodingConfig(StudyConfig):
    """The decoding study's config (presets: mtlens/configs/decoding/*.yaml)."""

    study: Literal["decoding"] = "decoding"
    encoders: list[HardSharingEncoder] = Field(default_factory=lambda: ["random", "single_task", "multi_head"],
                                               min_length=1)
    single_tasks: list[int] = Field(default_factory=lambda: [0], min_length=1)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    decoder: DecoderConfig = Field(default_factory=DecoderConfig)
    figures: FiguresConfig = Field(default_factory=FiguresConfig)
    embeddings: EmbeddingsConfig = Field(default_factory=EmbeddingsConfig)

    cell_fields: ClassVar[frozenset[str]] = frozenset({"encoders", "single_tasks"})


def check(cfg: DecodingConfig) -> None:
    """Raises one line for task indices, image counts the splits do not hold, or a missing umap-learn."""
    check_single_tasks(cfg.single_tasks, cfg.data.n_tasks)
    dataset, _ = check_data(cfg.data, cfg.data_dir, factors=True)
    sizes = split_sizes(cfg.data, dataset)
    check_count("decoder.train_images", cfg.decoder.train_images, sizes["train"], "training")
    check_count("figures.examples", cfg.figures.examples, sizes["test"], "test")
    check_count("embeddings.points", cfg.embeddings.points, sizes["test"], "test")
    if 0 < cfg.embeddings.points <= cfg.embeddings.n_neighbors:
        raise MtlensError(f"embeddings.points={cfg.embeddings.points} must exceed embeddings.n_neighbors="
                          f"{cfg.embeddings.n_neighbors} (or be 0 for no embeddings)")
    if cfg.embeddings.points:
        _umap()  # one line naming `pip install mtlens[umap]` before anything is written


def cells(cfg: DecodingConfig) -> list[Cell]:
    """Returns one cell per seed and encoder (and trained task, for the single-task encoders)."""
    return [Cell(seed, {"encoder": enc, "task": task}, f"seed{seed}/{enc}" + ("" if task is None else f"/task_{task}"))
            for seed in cfg.seeds for enc in cfg.encoders
            for task in (cfg.single_tasks if enc == "single_task" else [None])]


def _settings(cfg: DecodingConfig) -> DecoderSettings:
    d = cfg.decoder
    return DecoderSettings(epochs=d.epochs, lr=d.lr, halve_every=d.halve_every, batch_size=d.batch_size,
                           eval_batch_size=cfg.train.eval_batch_size, activation=d.activation, output=d.output,
                           device=cfg.train.device, log_every=d.log_every)


def run_cell(cfg: DecodingConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Trains one encoder, then a decoder on its frozen codes; returns the reconstruction error (and the
    encoder's test values), and leaves the figures' arrays in the cell's artifacts."""
    data = cell_data(ctx, cfg.data, cfg.data_dir, cfg.decoder.train_images)
    encoder, values = train_hard_sharing_encoder(cell.params["encoder"], cell.params["task"], data, cfg.model,
                                                 cfg.train, cell.seed, ctx)
    result = decoding_cell(encoder, data.train_images, data.test_images, _settings(cfg), cell.seed,
                           label=cell.name, store=PrefixedSink(ctx.sink, "decoder/"), run_id=ctx.run_id,
                           checkpoint_dir=ctx.artifacts / "decoder", resume=ctx.resume)
    test = data.test_images
    rows = example_rows(test, cfg.figures.examples, seed=0)  # the same examples in every cell
    x = test.x(rows)
    codes = encode_split(encoder, test, cfg.train.eval_batch_size, device=cfg.train.device)
    trav = traverse(result.probe, x[0], cfg.figures.traversal_steps, cfg.figures.traversal_range, observed=codes)
    arrays: dict[str, Any] = {
        "example_rows": rows, "inputs": to_uint8(x), "reconstructions": to_uint8(reconstruct(result.probe, x)),
        "traversal_values": trav.values, "traversal_images": to_uint8(trav.images),
        "traversal_input": to_uint8(trav.image), "traversal_reconstruction": to_uint8(trav.reconstruction)}
    if cfg.embeddings.points:
        emb = embedding_cell({"encoder": encoder}, test, cfg.embeddings.points, seed=0,
                             batch_size=cfg.train.eval_batch_size, device=cfg.train.device,
                             n_neighbors=cfg.embeddings.n_neighbors, min_dist=cfg.embeddings.min_dist)
        arrays.update(embedding=emb.coords["encoder"], embedding_factors=emb.factor_values,
                      factor_names=np.array(emb.factor_names))
    save_arrays(ctx, **arrays)
    return {**values, **result.values()}


def report(cfg: DecodingConfig, runs: list[Any], rep: Any) -> None:
    """Table 4 beside the published one, the reconstruction grid, traversals and UMAP embeddings."""
    from mtlens.studies.representation.reports import fill_decoding

    fill_decoding(cfg, runs, rep)


STUDIES.add(Study("decoding", DecodingConfig, cells, run_cell, report,
                  title="What frozen encoders keep: decoders, traversals and embeddings (seed 000 §4.2)",
                  published="seed000", check=check))
