"""The task-set contract: what each task predicts and how targets are made from factors or labels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mtlens.errors import MtlensError

TaskKind = Literal["regression", "binary", "multiclass"]
TASK_KINDS: tuple[str, ...] = ("regression", "binary", "multiclass")


@dataclass(frozen=True)
class TaskSpec:
    """One task: its name, its kind, and its number of classes (multiclass only; binary counts 2)."""

    name: str
    kind: TaskKind
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise MtlensError(f"task {self.name!r}: unknown kind {self.kind!r}; choose one of {', '.join(TASK_KINDS)}")
        if self.kind == "multiclass" and (self.num_classes is None or self.num_classes < 2):
            raise MtlensError(f"task {self.name!r}: a multiclass task needs num_classes >= 2, got {self.num_classes}")
        if self.kind == "binary" and self.num_classes not in (None, 2):
            raise MtlensError(f"task {self.name!r}: a binary task has 2 classes, got num_classes={self.num_classes}")

    @property
    def output_dim(self) -> int:
        """Returns the width of a head's output for this task (1 for regression and binary logits)."""
        return int(self.num_classes) if self.kind == "multiclass" else 1


def check_n_tasks(n_tasks: object, owner: str) -> int:
    """Returns `n_tasks` as an int, or raises unless it is a positive integer (bools and floats refused)."""
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, (int, np.integer)) or n_tasks < 1:
        raise MtlensError(f"{owner}: n_tasks must be >= 1, a whole number; got {n_tasks!r}")
    return int(n_tasks)


class HasTasks:
    """Anything holding a `tasks` tuple of TaskSpec: task sets and task data; gives their count and names."""

    tasks: tuple[TaskSpec, ...]

    @property
    def n_tasks(self) -> int:
        """Returns the number of tasks."""
        return len(self.tasks)

    @property
    def names(self) -> list[str]:
        """Returns the task names, in task order."""
        return [t.name for t in self.tasks]


class TaskSet(HasTasks, ABC):
    """Maps factors (or labels) to targets: `task_set(z) -> targets [N, T]` (float32; class tasks hold indices)."""

    @abstractmethod
    def __call__(self, z: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Returns the targets [N, T] for inputs z [N, K]."""
