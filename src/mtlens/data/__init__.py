"""Datasets with known generative factors, task generators, and multi-task datasets and loaders.

`create_factor_dataset(name)` builds a factor dataset (images with known factors; label it with a task set
such as `RandomMLPTasks`), `create_task_data(name)` a dataset that comes with its tasks (`TaskSplits` or
`TaskGroupData`), `create_benchmark(name, split)` one split of an image benchmark (NYU-v2, CityScapes,
CelebA, the procedural dense scene); `available_datasets(kind)` lists the names.
"""

from mtlens.data.base import SOURCE_KINDS, FactorDataset, Source, SourceKind
from mtlens.data.paths import resolve_data_dir
from mtlens.data.registry import (
    BENCHMARKS,
    DATASET_KINDS,
    FACTOR_DATASETS,
    TASK_DATA,
    DatasetKind,
    available_datasets,
    create_benchmark,
    create_factor_dataset,
    create_task_data,
    dataset_kind,
)
from mtlens.data.task_groups import TaskData, TaskGroupData, TaskSplits

# the modules below register their datasets when imported
from mtlens.data import tiny, mpi3d, dsprites, shapes3d  # noqa: F401, E402  (factor datasets)
from mtlens.data import digit_tasks, digit_pairs, tabular, omniglot, random_patterns  # noqa: F401, E402  (task data)
from mtlens.data import celeba, dense_npy, shapes3d_dense  # noqa: F401, E402  (benchmarks)
from mtlens.data.benchmarks import benchmark_splits  # noqa: E402
from mtlens.data.dense import DenseDataset, DenseTask  # noqa: E402

__all__ = [
    "BENCHMARKS",
    "DATASET_KINDS",
    "DenseDataset",
    "DenseTask",
    "benchmark_splits",
    "create_benchmark",
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
