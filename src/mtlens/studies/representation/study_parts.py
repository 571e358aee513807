"""What the decoding, autoencoders and geometry studies share on the engine: their config sections, the data a
cell needs (built once per worker), the encoders a cell trains itself, and the arrays it leaves for the report.

Every encoder a cell analyses is trained by that cell (a hard-sharing model, or an auto-encoder): a cell never
opens the run store (the engine's contract, so cells run on pool workers and Ray alike), needs no other
study's runs to exist first, and resumes on its own: each trainer of a cell checkpoints into its own folder
of the cell's artifacts (`encoder/`, `decoder/`, `autoencoder/`) and logs under that prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from mtlens.config import Section
from mtlens.data.base import FactorDataset
from mtlens.data.multitask import MultiTaskDataset, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.errors import MtlensError
from mtlens.models import create_model
from mtlens.studies.common import DataConfig, ModelConfig, build_factor_data, build_method, cell_train_config, seed_everything
from mtlens.studies.engine import CellContext
from mtlens.studies.representation.autoencoders import AutoencoderSettings, train_autoencoder
from mtlens.studies.representation.images import ImageSplit
from mtlens.training import TrainConfig, Trainer

HardSharingEncoder = Literal["random", "single_task", "multi_head", "one_head"]
AutoencoderKind = Literal["ae", "vae", "factor_vae"]
ARRAYS = "arrays.npz"


class AutoencoderConfig(Section):
    """Auto-encoder training (seed 000 App. C.3: 100 epochs, batches of 64, Adam lr 1e-4, latent 8, tanh).

    `train_images`: the first N images of the training split (None: all of it)."""

    epochs: int = Field(100, ge=0)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(64, ge=1)
    latent_dim: int = Field(8, ge=1)
    activation: Literal["relu", "tanh"] = "tanh"
    beta: float = Field(1.0, ge=0)
    gamma: float = Field(1.0, ge=0)
    discriminator_layers: int = Field(6, ge=1)
    discriminator_width: int = Field(1000, ge=1)
    train_images: int | None = Field(None, ge=1)
    log_every: int = Field(50, ge=0)

    def settings(self, train: TrainConfig) -> AutoencoderSettings:
        """Returns the science layer's settings (device and evaluation batch from the study's `train`)."""
        return AutoencoderSettings(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                                   eval_batch_size=train.eval_batch_size, latent_dim=self.latent_dim,
                                   activation=self.activation, beta=self.beta, gamma=self.gamma,
                                   discriminator_layers=self.discriminator_layers,
                                   discriminator_width=self.discriminator_width, device=train.device,
                                   log_every=self.log_every)


class PrefixedSink:
    """The cell's metric sink seen by one of its trainers: every name gets the trainer's prefix (`decoder/...`)."""

    def __init__(self, sink: Any, prefix: str) -> None:
        self.sink, self.prefix = sink, prefix

    def log_metrics(self, run_id: str, step: int, values: Mapping[str, float]) -> None:
        self.sink.log_metrics(run_id, step, {self.prefix + k: v for k, v in values.items()})

    def fail(self, run_id: str, message: str, step: int | None = None) -> None:
        self.sink.fail(run_id, f"{self.prefix.rstrip('/')}: {message}", step)


@dataclass
class CellData:
    """A factor dataset with its random-MLP tasks and splits, and cached image splits for decoders / AEs."""

    dataset: FactorDataset
    task_set: RandomMLPTasks
    splits: dict[str, MultiTaskDataset]
    train_images: ImageSplit
    test_images: ImageSplit


def cell_data(ctx: CellContext, data: DataConfig, data_dir: str | None, train_images: int | None) -> CellData:
    """Returns the cell's data, built once per worker process (images of the first `train_images` rendered once)."""

    def build() -> CellData:
        dataset, task_set, splits = build_factor_data(data, data_dir)
        train_idx = splits["train"].indices if train_images is None else splits["train"].indices[:train_images]
        return CellData(dataset, task_set, splits, ImageSplit(dataset, train_idx, cache=True),
                        ImageSplit.of(splits["test"], cache=True))

    built = ctx.cached(["representation_data", data_dir, data.model_dump(mode="json"), train_images], build)
    ctx.note("data_source", f"{built.dataset.name}: {built.dataset.source}")
    ctx.note("tasks", [[t.name, t.kind] for t in built.task_set.tasks])
    return built


def split_sizes(data: DataConfig, dataset: FactorDataset) -> dict[str, int]:
    """Returns the number of images in each split of the data section (index arithmetic, nothing rendered)."""
    split = split_indices(len(dataset), data.fractions, seed=data.split_seed, subset=data.subset)
    return {"train": len(split.train), "val": len(split.val), "test": len(split.test)}


def train_hard_sharing_encoder(variant: str, task: int | None, data: CellData, model_cfg: ModelConfig,
                               train: TrainConfig, seed: int, ctx: CellContext) -> tuple[nn.Module, dict[str, float]]:
    """Returns (the encoder module of a hard-sharing model trained as the hard-sharing study trains it, its
    final test values prefixed "encoder/"). The random encoder is the seeded initialisation, untrained (seed 000
    App. C.2: "the default initialization used by the pytorch library")."""
    seed_everything(seed)
    model = create_model(variant, data.task_set.tasks, data.dataset.image_shape, **model_cfg.kwargs(),
                         **({"task": task} if variant == "single_task" else {}))
    if variant == "random":
        return model.encoder.eval(), {}
    method = build_method("ew", len(model.active_tasks), "param", {})
    trainer = Trainer(model, method, data.splits, cell_train_config(train, seed), store=PrefixedSink(ctx.sink, "encoder/"),
                      run_id=ctx.run_id, checkpoint_dir=ctx.artifacts / "encoder")
    values = trainer.fit(resume=ctx.resume)
    return model.encoder.eval(), {f"encoder/{k}": v for k, v in values.items()}


def train_cell_autoencoder(kind: str, data: CellData, cfg: AutoencoderConfig, train: TrainConfig, seed: int,
                           ctx: CellContext) -> tuple[nn.Module, dict[str, float]]:
    """Returns (auto-encoder `kind` trained on the cell's training images, its final test values prefixed
    "autoencoder/"), checkpointed in the cell's `autoencoder/` folder."""
    model, values = train_autoencoder(kind, data.train_images, data.test_images, cfg.settings(train), seed,
                                      store=PrefixedSink(ctx.sink, "autoencoder/"), run_id=ctx.run_id,
                                      checkpoint_dir=ctx.artifacts / "autoencoder", resume=ctx.resume)
    return model, {f"autoencoder/{k}": v for k, v in values.items()}


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Returns images in [0, 1] as uint8 (what a figure shows; a quarter of the bytes of float32)."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)


def save_arrays(ctx: CellContext, **arrays: Any) -> Path:
    """Writes the cell's arrays for the report (`arrays.npz` in its artifacts, no pickled objects); returns it."""
    path = ctx.artifacts / ARRAYS
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: np.asarray(v) for k, v in arrays.items()})
    return path


def load_arrays(run: Any) -> dict[str, np.ndarray] | None:
    """Returns a finished cell's arrays (None when it has none), read without unpickling anything."""
    if run.run is None or run.status != "finished":
        return None
    path = run.run.artifacts_dir / ARRAYS
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def check_single_tasks(tasks: list[int], n_tasks: int) -> None:
    """Raises one line for single-task indices outside 0..n_tasks-1."""
    bad = [t for t in tasks if not 0 <= t < n_tasks]
    if bad:
        raise MtlensError(f"single_tasks {bad} are not task indices 0..{n_tasks - 1}; choose tasks of data.n_tasks")


def check_count(name: str, value: int | None, available: int, split: str) -> None:
    """Raises one line when a configured image count exceeds what the split holds (never a silent truncation)."""
    if value is not None and value > available:
        raise MtlensError(f"{name}={value} but the {split} split holds {available} images; lower {name} "
                          "or raise data.subset")
