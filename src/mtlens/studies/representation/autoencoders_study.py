"""The `autoencoders` study (seed 000 §3.2.2, §4.3, App. C.3, F): does a disentangled code help multi-task heads?

One cell per (seed, representation). An auto-encoder row (ae, vae, factor_vae) trains its auto-encoder on the
images (`autoencoder`), freezes its encoder (VAE: the mean) and scores its codes with the disentanglement
metrics (`metrics`, Table 6); every row then trains the Table 3 heads (`heads`, trained by `train`: App. C.3's
30 epochs, batches of 64, lr 1e-4) on that representation's inputs for the random-MLP targets and records the
test RMSE (Table 1): in standardised target units, and in the targets' raw units (the scale the seed prints).
`ground_truth` is the standardised varying factors, `raw_factors` the task networks' own inputs (upper bound).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from mtlens.config import Section
from mtlens.studies.base import StudyConfig
from mtlens.studies.common import DataConfig, check_data
from mtlens.studies.engine import Cell, CellContext, Study
from mtlens.studies.evaluation import check_metrics
from mtlens.studies.hard_sharing import MetricsConfig
from mtlens.studies.registry import STUDIES
from mtlens.studies.representation.autoencoders import HeadSettings, table1_cell, table6_cell
from mtlens.studies.representation.decoding import example_rows, reconstruct
from mtlens.studies.representation.study_parts import (AutoencoderConfig, cell_data, check_count, save_arrays,
                                                       split_sizes, to_uint8, train_cell_autoencoder)

Representation = Literal["ground_truth", "raw_factors", "ae", "vae", "factor_vae"]
AUTOENCODER_ROWS = ("ae", "vae", "factor_vae")


class HeadsConfig(Section):
    """The multi-task heads on a frozen representation (seed 000 Table 3 with tanh, App. C.3)."""

    hidden: tuple[int, ...] = (300, 300, 300)
    activation: Literal["relu", "tanh"] = "tanh"


class AutoencodersConfig(StudyConfig):
    """The autoencoders study's config (presets: mtlens/configs/autoencoders/*.yaml)."""

    study: Literal["autoencoders"] = "autoencoders"
    representations: list[Representation] = Field(
        default_factory=lambda: ["ground_truth", "raw_factors", "ae", "vae", "factor_vae"], min_length=1)
    data: DataConfig = Field(default_factory=DataConfig)
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    heads: HeadsConfig = Field(default_factory=HeadsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    examples: int = Field(8, ge=1)

    cell_fields: ClassVar[frozenset[str]] = frozenset({"representations"})


def check(cfg: AutoencodersConfig) -> None:
    """Raises one line for metric names or options, or image counts the splits do not hold."""
    check_metrics(cfg.metrics.names, cfg.metrics.options)
    dataset, _ = check_data(cfg.data, cfg.data_dir, factors=True)
    sizes = split_sizes(cfg.data, dataset)
    check_count("autoencoder.train_images", cfg.autoencoder.train_images, sizes["train"], "training")
    check_count("examples", cfg.examples, sizes["test"], "test")


def cells(cfg: AutoencodersConfig) -> list[Cell]:
    """Returns one cell per seed and representation."""
    return [Cell(seed, {"representation": rep}, f"seed{seed}/{rep}") for seed in cfg.seeds for rep in cfg.representations]


def run_cell(cfg: AutoencodersConfig, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Trains the auto-encoder of an auto-encoder row (then scores its codes), then the heads on the row's
    representation; returns the heads' RMSE and per-task MSE, the metrics and the auto-encoder's test values."""
    rep = cell.params["representation"]
    data = cell_data(ctx, cfg.data, cfg.data_dir, cfg.autoencoder.train_images)
    values: dict[str, float] = {}
    model = None
    if rep in AUTOENCODER_ROWS:
        model, values = train_cell_autoencoder(rep, data, cfg.autoencoder, cfg.train, cell.seed, ctx)
        if cfg.metrics.names:
            values.update(table6_cell(model, data.dataset, cfg.metrics.names, seed=cell.seed,
                                      settings=cfg.metrics.options, device=cfg.train.device))
        x = data.test_images.x(example_rows(data.test_images, cfg.examples, seed=0))
        save_arrays(ctx, inputs=to_uint8(x), reconstructions=to_uint8(reconstruct(model, x)))
    t = cfg.train
    heads = HeadSettings(epochs=t.epochs, lr=t.lr, batch_size=t.batch_size, eval_batch_size=t.eval_batch_size,
                         hidden=cfg.heads.hidden, activation=cfg.heads.activation, device=t.device,
                         log_every=t.log_every)
    result = table1_cell(rep, data.dataset, data.task_set, data.splits, cell.seed, heads=heads, encoder=model)
    return {**values, **result.values()}


def report(cfg: AutoencodersConfig, runs: list[Any], rep: Any) -> None:
    """Tables 1 and 6 beside the published ones, and the auto-encoders' reconstructions."""
    from mtlens.studies.representation.reports import fill_autoencoders

    fill_autoencoders(cfg, runs, rep)


STUDIES.add(Study("autoencoders", AutoencodersConfig, cells, run_cell, report,
                  title="Auto-encoder representations as inputs to multi-task heads (seed 000 §4.3)",
                  published="seed000", check=check))
