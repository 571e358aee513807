"""Task data, the containers of datasets that come with their tasks: shared-input splits, or per-task data.

`TaskSplits`: all tasks see the same inputs (MultiMNIST, Grouped-MNIST); one MultiTaskDataset per split with a
target column per task.
`TaskGroupData`: each task has its own inputs (seed 003's digit pairs and UCI tables, whose widths and
class counts differ); per task a train and a test MultiTaskDataset holding that one task, with the input
shape of each task, so a model with task-specific encoders (soft layer ordering) can be built from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch.utils.data import DataLoader

from mtlens.data.base import Source
from mtlens.data.multitask import SPLITS, MultiTaskDataset, make_loader
from mtlens.data.tasks import HasTasks, TaskSpec
from mtlens.errors import MtlensError


@dataclass(frozen=True)
class TaskSplits(HasTasks):
    """Train/val/test MultiTaskDatasets over shared inputs, with their tasks, input shape and source."""

    name: str
    tasks: tuple[TaskSpec, ...]
    train: MultiTaskDataset
    val: MultiTaskDataset
    test: MultiTaskDataset
    input_shape: tuple[int, ...]
    source: Source
    info: dict[str, object] = field(default_factory=dict)

    def __getitem__(self, split: str) -> MultiTaskDataset:
        if split not in SPLITS:
            raise MtlensError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, split)

    def splits(self) -> dict[str, MultiTaskDataset]:
        """Returns {"train": ..., "val": ..., "test": ...}."""
        return {s: self[s] for s in SPLITS}

    def describe(self) -> dict[str, object]:
        """Returns a JSON-able summary: tasks, split sizes, input shape, source and build details."""
        return {
            "name": self.name,
            "n_tasks": self.n_tasks,
            "tasks": [{"name": t.name, "kind": t.kind, "num_classes": t.num_classes} for t in self.tasks],
            "sizes": {s: len(self[s]) for s in SPLITS},
            "num_images": sum(len(self[s]) for s in SPLITS),
            "image_shape": list(self.input_shape),
            "source": str(self.source),
            **self.info,
        }


@dataclass(frozen=True)
class TaskGroupData(HasTasks):
    """Per-task train/test MultiTaskDatasets (one task each) for tasks whose inputs differ."""

    name: str
    tasks: tuple[TaskSpec, ...]
    train: tuple[MultiTaskDataset, ...]
    test: tuple[MultiTaskDataset, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    source: Source
    info: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.tasks)
        if not (len(self.train) == len(self.test) == len(self.input_shapes) == n):
            raise MtlensError(
                f"{self.name}: {n} tasks need as many train sets, test sets and input shapes, got "
                f"{len(self.train)}, {len(self.test)}, {len(self.input_shapes)}"
            )
        for spec, tr, te in zip(self.tasks, self.train, self.test):
            if tr.tasks != (spec,) or te.tasks != (spec,):
                raise MtlensError(f"{self.name}: the datasets of task {spec.name!r} must hold exactly that one task")

    def task(self, key: int | str) -> tuple[MultiTaskDataset, MultiTaskDataset]:
        """Returns (train, test) of the task at position `key` or named `key`."""
        if isinstance(key, str):
            if key not in self.names:
                raise MtlensError(f"{self.name}: no task {key!r}; its tasks are {', '.join(self.names)}")
            key = self.names.index(key)
        if not 0 <= key < self.n_tasks:
            raise MtlensError(f"{self.name}: task index {key} out of range 0..{self.n_tasks - 1}")
        return self.train[key], self.test[key]

    def loaders(
        self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0, drop_last: bool = False
    ) -> list[DataLoader]:
        """Returns one loader per task over `split` ("train" or "test"); task i shuffles with seed + i."""
        if split not in ("train", "test"):
            raise MtlensError(f"{self.name}: per-task data has the splits 'train' and 'test', got {split!r}")
        parts: Sequence[MultiTaskDataset] = self.train if split == "train" else self.test
        return [
            make_loader(d, batch_size, shuffle=shuffle, seed=seed + i, drop_last=drop_last)
            for i, d in enumerate(parts)
        ]

    def describe(self) -> dict[str, object]:
        """Returns a JSON-able summary: per task its kind, classes, input shape and split sizes; source and details."""
        return {
            "name": self.name,
            "n_tasks": self.n_tasks,
            "tasks": [
                {
                    "name": t.name,
                    "kind": t.kind,
                    "num_classes": t.num_classes,
                    "input_shape": list(shape),
                    "num_train": len(tr),
                    "num_test": len(te),
                }
                for t, shape, tr, te in zip(self.tasks, self.input_shapes, self.train, self.test)
            ],
            "source": str(self.source),
            **self.info,
        }


# what `create_task_data` returns: every task sees the same inputs, or each task has its own
TaskData = TaskSplits | TaskGroupData
