"""Multi-task data: seeded splits, a torch Dataset yielding {x, targets, factors}, and loaders.

A batch is a dict: `x` [B, ...] float32, `targets` [B, T] float32 (class tasks hold class indices), and
`factors` [B, K] int64 when the factors are known. Batches are assembled whole (`__getitems__`), so a
procedural dataset renders a batch at once instead of image by image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mtlens.data.base import FactorDataset
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Disjoint index arrays of the train, validation and test parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise MtlensError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)


def split_indices(
    n: int | np.ndarray,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    subset: int | None = None,
) -> Split:
    """Returns a seeded random train/val/test split of range(n) (or of the given indices), optionally of a subset.

    Each part is sorted, so reading an official file in index order stays sequential.
    """
    pool = np.arange(n, dtype=np.int64) if np.isscalar(n) else np.asarray(n, dtype=np.int64)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise MtlensError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool)
    if subset is not None:
        if not 1 <= subset <= len(pool):
            raise MtlensError(f"subset must be between 1 and {len(pool)} (the dataset size), got {subset}")
        order = order[:subset]
    n_train = int(round(fractions[0] * len(order)))
    n_val = int(round(fractions[1] * len(order)))
    parts = np.split(order, [n_train, n_train + n_val])
    return Split(*(np.sort(p) for p in parts))


class MultiTaskDataset(Dataset):
    """Yields {x, targets, factors}; x is rendered on demand from a factor dataset or read from a tensor."""

    def __init__(
        self,
        x: FactorDataset | torch.Tensor,
        targets: torch.Tensor,
        tasks: Sequence[TaskSpec],
        *,
        indices: np.ndarray | None = None,
        factors: np.ndarray | None = None,
    ) -> None:
        self.tasks = tuple(tasks)
        targets = torch.as_tensor(targets, dtype=torch.float32)
        if targets.ndim != 2 or targets.shape[1] != len(self.tasks):
            raise MtlensError(f"targets must be [N, {len(self.tasks)}] (one column per task), got {tuple(targets.shape)}")
        if not torch.isfinite(targets).all():
            bad = int((~torch.isfinite(targets)).any(0).nonzero()[0])
            raise MtlensError(f"targets of task {self.tasks[bad].name!r} contain NaN or inf; clean the labels first")
        self.targets = targets
        if isinstance(x, FactorDataset):
            if indices is None:
                raise MtlensError("a MultiTaskDataset over a factor dataset needs the dataset indices of its rows")
            self.source: FactorDataset | None = x
            self.indices = x.check_indices(indices)
            self.x = None
            self.factors = None
        else:
            self.source = None
            self.indices = None
            self.x = torch.as_tensor(x)
            self.factors = None if factors is None else np.asarray(factors, dtype=np.int64)
        n = len(self.indices) if self.indices is not None else self.x.shape[0]  # type: ignore[union-attr]
        if targets.shape[0] != n or (self.factors is not None and self.factors.shape[0] != n):
            raise MtlensError(f"inputs, targets and factors disagree in length ({n} vs {targets.shape[0]})")

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitems__(self, rows: Sequence[int]) -> dict[str, torch.Tensor]:
        """Returns the batch of the given rows as one dict."""
        rows_arr = np.asarray(rows, dtype=np.int64)
        batch: dict[str, torch.Tensor] = {"targets": self.targets[rows_arr]}
        if self.source is not None:
            idx = self.indices[rows_arr]  # type: ignore[index]
            batch["x"] = self.source.images(idx)
            batch["factors"] = torch.from_numpy(self.source.factors(idx))
        else:
            batch["x"] = self.x[rows_arr]  # type: ignore[index]
            if self.factors is not None:
                batch["factors"] = torch.from_numpy(self.factors[rows_arr])
        return batch

    def __getitem__(self, row: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([row]).items()}


def _whole_batch(batch: Any) -> Any:
    return batch


def default_num_workers() -> int:
    """Returns a worker count sized for this machine: none on 2 cores or fewer, else up to 4."""
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(4, cores - 2)


def make_loader(
    dataset: MultiTaskDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int | str = 0,
) -> DataLoader:
    """Returns a DataLoader yielding batch dicts; shuffling is seeded, so the batch order is reproducible."""
    if batch_size < 1:
        raise MtlensError(f"batch_size must be >= 1, got {batch_size}")
    workers = default_num_workers() if num_workers == "auto" else int(num_workers)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
        num_workers=workers,
        collate_fn=_whole_batch,
        persistent_workers=workers > 0,
    )


def factor_task_splits(
    dataset: FactorDataset,
    task_set: RandomMLPTasks,
    split: Split,
    *,
    device: str | torch.device = "auto",
) -> dict[str, MultiTaskDataset]:
    """Returns train/val/test MultiTaskDatasets labelled by `task_set`, standardised on the training part."""
    if task_set.standardize:
        task_set.fit(dataset.factor_values(split.train), device=device)
    out = {}
    for name in SPLITS:
        idx = split[name]
        targets = task_set(dataset.factor_values(idx), device=device) if len(idx) else torch.zeros(0, task_set.n_tasks)
        out[name] = MultiTaskDataset(dataset, targets, task_set.tasks, indices=idx)
    return out
