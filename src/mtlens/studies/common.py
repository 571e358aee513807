"""Config sections and builders shared by the studies: factor data with random-MLP tasks, model, method."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
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
from mtlens.training import TrainConfig


class DataConfig(Section):
    """A factor dataset labelled by random-MLP tasks (seed 000 §3.1), or a shared-input task set."""

    dataset: str = "dsprites"
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

    def kwargs(self) -> dict[str, Any]:
        """Returns the keyword arguments of `create_model` this section sets."""
        return {"latent_dim": self.latent_dim, "activation": self.activation, "head_hidden": self.head_hidden,
                "head_activation": self.head_activation}


class MethodConfig(Section):
    """The MTL method combining the task losses (`--method NAME`, `--method-level param|feature`)."""

    name: str = "ew"
    level: Literal["param", "feature"] = "param"
    options: dict[str, Any] = Field(default_factory=dict)

    def build(self, n_tasks: int) -> Method:
        """Returns a new method object for `n_tasks` tasks."""
        return build_method(self.name, n_tasks, self.level, self.options)


def build_method(name: str, n_tasks: int, level: str, options: dict[str, Any]) -> Method:
    """Returns a new method, or raises one line naming a bad option or value (checked before any run is written)."""
    return create_method(name, n_tasks, level=level, **options)


def cell_train_config(train: TrainConfig, seed: int) -> TrainConfig:
    """Returns the Trainer's config for one cell: the study's settings with the cell's seed, no progress bar."""
    return dataclasses.replace(train, seed=seed, progress=False)


def _dataset(cfg: DataConfig, data_dir: str | None) -> object:
    """Returns the factor dataset or the task data named in the data section (each through its typed factory)."""
    if dataset_kind(cfg.dataset) == "factor":
        return create_factor_dataset(cfg.dataset, data_dir=data_dir, **cfg.options)
    return create_task_data(cfg.dataset, data_dir=data_dir, **cfg.options)


def build_factor_data(cfg: DataConfig, data_dir: str | None = None
                      ) -> tuple[FactorDataset, RandomMLPTasks, dict[str, MultiTaskDataset]]:
    """Returns the factor dataset, its random-MLP tasks and the train/val/test multi-task datasets."""
    dataset = _dataset(cfg, data_dir)
    if not isinstance(dataset, FactorDataset):
        raise MtlensError(f"dataset {cfg.dataset!r} has no generative factors; random-MLP tasks need a factor dataset")
    tasks = RandomMLPTasks.for_dataset(dataset, cfg.n_tasks, cfg.task_seed, inputs=cfg.inputs, standardize=cfg.standardize)
    split = split_indices(len(dataset), cfg.fractions, seed=cfg.split_seed, subset=cfg.subset)
    return dataset, tasks, factor_task_splits(dataset, tasks, split)


@dataclass(frozen=True)
class StudyData:
    """What a study trains on: splits, tasks, input shape, and a name with its source for reports (shared inputs)."""

    name: str
    source: str
    tasks: tuple[TaskSpec, ...]
    splits: dict[str, MultiTaskDataset]
    input_shape: tuple[int, ...]


def build_task_data(cfg: DataConfig, data_dir: str | None = None) -> StudyData:
    """Returns a factor dataset with random-MLP tasks, or a shared-input task set (MultiMNIST, Grouped-MNIST)."""
    built = _dataset(cfg, data_dir)
    if isinstance(built, FactorDataset):
        dataset, tasks, splits = build_factor_data(cfg, data_dir)
        return StudyData(dataset.name, str(dataset.source), tasks.tasks, splits, dataset.image_shape)
    if isinstance(built, TaskSplits):
        return StudyData(built.name, str(built.source), built.tasks, built.splits(), built.input_shape)
    raise MtlensError(f"dataset {cfg.dataset!r} gives each task its own inputs; this study needs shared inputs "
                      "(a factor dataset, multimnist or grouped_mnist)")


def check_data(cfg: DataConfig, data_dir: str | None, factors: bool) -> tuple[object, int]:
    """Returns (the dataset object, its training-split size), or raises one line on a bad data section.

    Cheap for factor datasets (images are read or drawn lazily, the split is index arithmetic); a task set
    such as MultiMNIST is built here once more than in the worker.
    """
    dataset = _dataset(cfg, data_dir)  # unknown options and names are one-line errors of the factories
    if isinstance(dataset, FactorDataset):
        return dataset, len(split_indices(len(dataset), cfg.fractions, seed=cfg.split_seed, subset=cfg.subset).train)
    if factors or not isinstance(dataset, TaskSplits):
        raise MtlensError(f"dataset {cfg.dataset!r} has no generative factors; this study needs a factor dataset "
                          "(dsprites, shapes3d, mpi3d_*, tiny)")
    return dataset, len(dataset.splits()["train"])


def seed_everything(seed: int) -> None:
    """Seeds torch (CPU and CUDA) so that model initialisation is reproducible."""
    torch.manual_seed(seed)
