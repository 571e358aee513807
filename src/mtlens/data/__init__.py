"""Datasets with known generative factors, task generators, and multi-task datasets and loaders.

`create_factor_dataset(name)` builds a factor dataset (images with known factors; label it with a task set
such as `RandomMLPTasks`), `create_task_data(name)` a dataset that comes with its tasks (`TaskSplits` or
`TaskGroupData`); `available_datasets(kind)` lists the names.
"""

from mtlens.data.base import SOURCE_KINDS, FactorDataset, Source, SourceKind
from mtlens.data.paths import resolve_data_dir
from mtlens.data.registry import (
    DATASET_KINDS,
    FACTOR_DATASETS,
    TASK_DATA,
    DatasetKind,
    available_datasets,
    create_factor_dataset,
    create_task_data,
    dataset_kind,
)
from mtlens.data.task_groups import TaskData, TaskGroupData, TaskSplits

# the modules below register their datasets when imported
from mtlens.data import tiny, mpi3d, dsprites, shapes3d  # noqa: F401, E402  (factor datasets)
from mtlens.data import digit_tasks, digit_pairs, tabular  # noqa: F401, E402  (task data)

__all__ = [
    "DATASET_KINDS",
    "FACTOR_DATASETS",
    "SOURCE_KINDS",
    "TASK_DATA",
    "DatasetKind",
    "FactorDataset",
    "Source",
    "SourceKind",
    "TaskData",
    "TaskGroupData",
    "TaskSplits",
    "available_datasets",
    "create_factor_dataset",
    "create_task_data",
    "dataset_kind",
    "resolve_data_dir",
]
