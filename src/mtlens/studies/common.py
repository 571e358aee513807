"""Config sections and builders shared by the studies: factor data with random-MLP tasks, model, training, method."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field

from mtlens.config import Section
from mtlens.data import create_factor_dataset, create_task_data, dataset_kind
from mtlens.data.base import FactorDataset
from mtlens.data.multitask import MultiTaskDataset, factor_task_splits, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.task_groups import TaskSplits
from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.methods import create_method
from mtlens.methods.base import Method
from mtlens.runs import RunStore
from mtlens.runs.records import Run
from mtlens.training import TrainConfig


class DataConfig(Section):
    """A factor dataset labelled by random-MLP tasks (seed 000 §3.1)."""

    dataset: str = "dsprites"
    data_dir: str | None = None
    n_tasks: int = Field(10, ge=1)
    task_seed: int = 0
    inputs: Literal["physical", "unit"] = "physical"
    standardize: bool = True
    subset: int | None = Field(None, ge=3)
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    options: dict[str, Any] = Field(default_factory=dict)


class ModelConfig(Section):
    """Encoder and heads (seed 000 Tables 2-3)."""

    latent_dim: int = Field(8, ge=1)
    activation: Literal["relu", "tanh"] = "relu"
    head_hidden: tuple[int, ...] = (300, 300, 300)
    head_activation: Literal["relu", "tanh"] = "relu"


class TrainSection(Section):
    """Training settings (seed 000 App. C.1)."""

    epochs: int = Field(200, ge=0)
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = Field(256, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    device: str = "auto"
    log_every: int = Field(50, ge=0)
    progress: bool = True
    num_workers: int = Field(0, ge=0)

    def to_train_config(self, seed: int) -> TrainConfig:
        """Returns the Trainer's config for one seed."""
        return TrainConfig(epochs=self.epochs, lr=self.lr, betas=self.betas, batch_size=self.batch_size,
                           eval_batch_size=self.eval_batch_size, seed=seed, device=self.device,
                           log_every=self.log_every, progress=self.progress, num_workers=self.num_workers)


class MethodConfig(Section):
    """The MTL method combining the task losses (`--method NAME`, `--method-level param|feature`)."""

    name: str = "ew"
    level: Literal["param", "feature"] = "param"
    options: dict[str, Any] = Field(default_factory=dict)

    def build(self, n_tasks: int) -> Method:
        """Returns a new method object for `n_tasks` tasks."""
        return create_method(self.name, n_tasks, level=self.level, **self.options)


def build_factor_data(cfg: DataConfig) -> tuple[FactorDataset, RandomMLPTasks, dict[str, MultiTaskDataset]]:
    """Returns the factor dataset, its random-MLP tasks and the train/val/test multi-task datasets."""
    if dataset_kind(cfg.dataset) != "factor":
        raise MtlensError(f"dataset {cfg.dataset!r} has no generative factors; random-MLP tasks need a factor dataset")
    dataset = create_factor_dataset(cfg.dataset, data_dir=cfg.data_dir, **cfg.options)
    tasks = RandomMLPTasks.for_dataset(dataset, cfg.n_tasks, cfg.task_seed, inputs=cfg.inputs, standardize=cfg.standardize)
    split = split_indices(len(dataset), cfg.fractions, seed=cfg.split_seed, subset=cfg.subset)
    return dataset, tasks, factor_task_splits(dataset, tasks, split)


@dataclass(frozen=True)
class TaskData:
    """What a study trains on: splits, tasks, input shape, and a name with its source for reports."""

    name: str
    source: str
    tasks: tuple[TaskSpec, ...]
    splits: dict[str, MultiTaskDataset]
    input_shape: tuple[int, ...]


def build_task_data(cfg: DataConfig) -> TaskData:
    """Returns a factor dataset with random-MLP tasks, or a shared-input task set (MultiMNIST, Grouped-MNIST)."""
    if dataset_kind(cfg.dataset) == "factor":
        dataset, tasks, splits = build_factor_data(cfg)
        return TaskData(dataset.name, str(dataset.source), tasks.tasks, splits, dataset.image_shape)
    built = create_task_data(cfg.dataset, data_dir=cfg.data_dir, **cfg.options)
    if isinstance(built, TaskSplits):
        return TaskData(built.name, str(built.source), built.tasks, built.splits(), built.input_shape)
    raise MtlensError(f"dataset {cfg.dataset!r} gives each task its own inputs; this study needs shared inputs "
                      "(a factor dataset, multimnist or grouped_mnist)")


def seed_everything(seed: int) -> None:
    """Seeds torch (CPU and CUDA) so that model initialisation is reproducible."""
    torch.manual_seed(seed)


def open_or_resume(store: RunStore, study: str, config: dict[str, Any], seed: int, name: str,
                   resume: bool) -> tuple[Run, bool]:
    """Returns (the run to use, whether it is already finished): a finished or resumable run when `resume`."""
    from mtlens.runs import config_hash

    if resume:
        digest = config_hash(config)
        done = [r for r in store.list_runs(study=study, status="finished") if r.config_hash == digest and r.seed == seed]
        if done:
            return done[-1], True
        found = store.find_resumable(study, digest, seed)
        if found is not None:
            return found, False
    return store.get_run(store.create_run(study, config, seed, name=name)), False


def artifacts_root(store_path: str | Path) -> Path:
    """Returns the folder next to the store where study reports go."""
    return Path(store_path).parent / "reports"
