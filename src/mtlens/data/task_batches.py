"""Datasets whose batches hold one batch per task, for models with per-task inputs (seed 003's layer ordering).

A batch is {"x": [x_0, ..., x_{T-1}], "targets": [y_0, ..., y_{T-1}]}: x_t [B_t, ...] float32 and y_t [B_t]
(the task's one target column); training batches of tasks with one input shape stack them: x [T, B, ...],
targets [T, B]. Both datasets work with `make_loader` and the Trainer (which moves the lists
to the device), and assemble a batch whole (`__getitems__`).

- `RandomTaskBatches` (training, seed 003 App. A: "in each iteration of multitask training, a random batch for
  each task is processed"): every row of a batch stands for one random sample of every task, drawn uniformly
  with replacement from the global torch generator (so seeding torch, and the Trainer's checkpointed RNG
  state, make the draws reproducible and resumable). Its length sets the steps per epoch.
- `AlignedTaskBatches` (evaluation): row r holds sample r of every task that has one, so one pass over
  max_t N_t rows covers every test sample of every task exactly once.
- `FullTaskBatches` (fitting, seed 003 §3.2): every row is the whole training set of every task, so the Trainer
  with batch_size 1 takes one full-batch step per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mtlens.data.multitask import MultiTaskDataset
from mtlens.data.task_groups import TaskGroupData
from mtlens.errors import MtlensError


def _task_arrays(parts: Sequence[MultiTaskDataset]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    if not parts:
        raise MtlensError("per-task batches need at least one task")
    xs, ys = [], []
    for part in parts:
        if part.x is None:
            raise MtlensError("per-task batches need tensor inputs (tasks over a factor dataset share inputs: use TaskSplits)")
        if len(part) == 0:
            raise MtlensError(f"task {part.tasks[0].name!r} has no samples; every task needs at least one")
        xs.append(part.x)
        ys.append(part.targets[:, 0])
    return xs, ys


def _as_float(x: torch.Tensor) -> torch.Tensor:
    # images may be stored compactly (uint8 0/1 for Omniglot); batches are float32 as everywhere
    return x if x.dtype == torch.float32 else x.float()


class RandomTaskBatches(Dataset):
    """Training batches: each of `length` rows draws one random sample of every task."""

    def __init__(self, parts: Sequence[MultiTaskDataset], length: int) -> None:
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise MtlensError(f"per-task training batches need a length (rows per epoch) >= 1, got {length!r}")
        self.xs, self.ys = _task_arrays(parts)
        self.length = int(length)
        self.same_shape = len({(x.shape[1:], x.dtype) for x in self.xs}) == 1

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, rows: Sequence[int]) -> dict[str, list[torch.Tensor] | torch.Tensor]:
        """Returns one batch of len(rows) random samples per task (the row numbers only set the count).

        When every task has the same input shape, x is one tensor [T, n, ...] and targets [T, n], gathered
        straight into place (no second copy to stack them).
        """
        n = len(rows)
        picks = [torch.randint(len(y), (n,)) for y in self.ys]
        if not self.same_shape:
            return {"x": [_as_float(x[i]) for x, i in zip(self.xs, picks)], "targets": [y[i] for y, i in zip(self.ys, picks)]}
        x = torch.empty((len(self.xs), n, *self.xs[0].shape[1:]), dtype=self.xs[0].dtype)
        y = torch.empty((len(self.ys), n), dtype=self.ys[0].dtype)
        for t, i in enumerate(picks):
            torch.index_select(self.xs[t], 0, i, out=x[t])
            torch.index_select(self.ys[t], 0, i, out=y[t])
        return {"x": _as_float(x), "targets": y}

    def __getitem__(self, row: int) -> dict[str, list[torch.Tensor] | torch.Tensor]:
        return self.__getitems__([row])


class AlignedTaskBatches(Dataset):
    """Evaluation batches: row r holds sample r of every task with more than r samples."""

    def __init__(self, parts: Sequence[MultiTaskDataset]) -> None:
        self.xs, self.ys = _task_arrays(parts)
        self.sizes = [len(y) for y in self.ys]

    def __len__(self) -> int:
        return max(self.sizes)

    def __getitems__(self, rows: Sequence[int]) -> dict[str, list[torch.Tensor]]:
        """Returns, per task, its samples among `rows` (an empty batch for a task with none)."""
        idx = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        out: dict[str, list[torch.Tensor]] = {"x": [], "targets": []}
        for x, y, n in zip(self.xs, self.ys, self.sizes):
            keep = idx[idx < n]
            out["x"].append(_as_float(x[keep]))
            out["targets"].append(y[keep])
        return out

    def __getitem__(self, row: int) -> dict[str, list[torch.Tensor]]:
        return self.__getitems__([row])


class FullTaskBatches(Dataset):
    """Full-batch training: each of `steps` rows is every sample of every task (one optimisation step each)."""

    def __init__(self, parts: Sequence[MultiTaskDataset], steps: int) -> None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise MtlensError(f"full-batch fitting needs steps >= 1, got {steps!r}")
        xs, ys = _task_arrays(parts)
        self.batch = {"x": [_as_float(x) for x in xs], "targets": ys}
        self.steps = int(steps)

    def __len__(self) -> int:
        return self.steps

    def __getitems__(self, rows: Sequence[int]) -> dict[str, list[torch.Tensor]]:
        """Returns the whole training set of every task (use batch_size 1: one row is one step)."""
        if len(rows) != 1:
            raise MtlensError(f"full-batch fitting takes one row per step (batch_size 1), got {len(rows)}")
        return self.batch

    def __getitem__(self, row: int) -> dict[str, list[torch.Tensor]]:
        return self.batch


def task_batch_splits(data: TaskGroupData, batch_size: int, steps_per_epoch: int,
                      eval_split: str = "test") -> dict[str, Dataset]:
    """Returns {"train": random per-task batches (steps_per_epoch x batch_size rows), "test": the aligned eval split}.

    eval_split "train" evaluates on the training samples (training accuracy, seed 003 §3.2).
    """
    if eval_split not in ("train", "test"):
        raise MtlensError(f"eval_split must be 'train' or 'test', got {eval_split!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MtlensError(f"batch_size (samples per task per step) must be >= 1, got {batch_size!r}")
    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, (int, np.integer)) or steps_per_epoch < 1:
        raise MtlensError(f"steps_per_epoch must be >= 1, got {steps_per_epoch!r}")
    return {"train": RandomTaskBatches(data.train, int(batch_size) * int(steps_per_epoch)),
            "test": AlignedTaskBatches(data.train if eval_split == "train" else data.test)}
