"""The dataset registries and their typed factories: factor datasets, task data, and image benchmarks.

Three kinds of dataset, each name registered in exactly one registry:
- a factor dataset (`FACTOR_DATASETS`, `create_factor_dataset`) is images with known generative factors and
  no tasks (dSprites, Shapes3D, MPI3D, tiny); a task set (`mtlens.data.tasks.TaskSet`, e.g. `RandomMLPTasks`)
  maps its factors to targets;
- task data (`TASK_DATA`, `create_task_data`) is inputs that come with their tasks' targets: `TaskSplits`
  when all tasks share the inputs (multimnist, grouped_mnist), `TaskGroupData` when each task has its own
  (digit_pairs, tabular);
- a benchmark (`BENCHMARKS`, `create_benchmark(name, split, ...)`) is a real-image multi-task set with official
  splits (nyuv2, cityscapes, celeba) or the procedural dense scene (shapes3d_dense); one split at a time, as
  a dataset whose batches hold per-task target maps.

Every factory takes `data_dir`; the factories resolve it (`--data-dir`, else $MTLENS_DATA) once and check the
options against the factory's signature, so a misspelt option is a one-line error, not a TypeError.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Literal, get_args

from mtlens.data.base import FactorDataset
from mtlens.data.paths import resolve_data_dir
from mtlens.data.task_groups import TaskData
from mtlens.errors import MtlensError
from mtlens.registry import Registry

FACTOR_DATASETS: Registry[FactorDataset] = Registry("factor dataset")
TASK_DATA: Registry[TaskData] = Registry("task data set")
BENCHMARKS: Registry[object] = Registry("benchmark")

DatasetKind = Literal["factor", "task_data", "benchmark"]
DATASET_KINDS: tuple[str, ...] = get_args(DatasetKind)
_REGISTRIES: dict[str, Registry] = {"factor": FACTOR_DATASETS, "task_data": TASK_DATA, "benchmark": BENCHMARKS}
# per kind: what it is called, what it holds, its factory (for the wrong-kind error)
_KINDS = {
    "factor": ("a factor dataset", "images with generative factors, no tasks", "create_factor_dataset"),
    "task_data": ("task data", "inputs with their tasks' targets", "create_task_data"),
    "benchmark": ("a benchmark", "image splits with per-task target maps", "create_benchmark"),
}


def available_datasets(kind: DatasetKind | None = None) -> list[str]:
    """Returns the registered dataset names, sorted: all of them, or those of one kind (see DATASET_KINDS)."""
    if kind is None:
        return sorted(name for registry in _REGISTRIES.values() for name in registry.available())
    if kind not in _REGISTRIES:
        raise MtlensError(f"unknown dataset kind {kind!r}; choose one of: {', '.join(DATASET_KINDS)}")
    return _REGISTRIES[kind].available()


def dataset_kind(name: str) -> DatasetKind:
    """Returns the kind of the dataset registered under `name` (or an alias): "factor", "task_data" or "benchmark"."""
    kinds = [kind for kind, registry in _REGISTRIES.items() if name in registry]
    if len(kinds) > 1:
        raise KeyError(f"dataset {name!r} is registered as {' and '.join(kinds)}; a name belongs to one kind")
    if kinds:
        return kinds[0]  # type: ignore[return-value]
    raise MtlensError(
        f"unknown dataset {name!r}; factor datasets: {', '.join(FACTOR_DATASETS.available())}; "
        f"task data: {', '.join(TASK_DATA.available())}; benchmarks: {', '.join(BENCHMARKS.available())}"
    )


def create_factor_dataset(name: str, **options: object) -> FactorDataset:
    """Returns the factor dataset registered under `name`, built with `options` (e.g. data_dir=...)."""
    return _create("factor", name, options)  # type: ignore[return-value]


def create_task_data(name: str, **options: object) -> TaskData:
    """Returns the task data registered under `name`: TaskSplits (shared inputs) or TaskGroupData (per task)."""
    return _create("task_data", name, options)  # type: ignore[return-value]


def create_benchmark(name: str, split: str = "train", **options: object) -> object:
    """Returns one split ("train", "val" or "test") of the benchmark registered under `name`."""
    return _create("benchmark", name, {"split": split, **options})


def _create(kind: DatasetKind, name: str, options: dict[str, object]) -> object:
    found = dataset_kind(name)
    if found != kind:
        what, holds, factory_name = _KINDS[found]
        raise MtlensError(f"{name!r} is {what} ({holds}), not {_KINDS[kind][0]}; use {factory_name}({name!r})")
    registry = _REGISTRIES[kind]
    factory = registry.get(name)
    _check_options(registry.canonical(name), factory, options)
    # checked here, once for every dataset: a missing folder is an error, never a silent fall-back to a renderer
    options["data_dir"] = resolve_data_dir(options.get("data_dir"))  # type: ignore[arg-type]
    return factory(**options)


def _check_options(name: str, factory: Callable[..., object], options: dict[str, object]) -> None:
    """Raises unless `options` are keyword arguments that `factory` accepts."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise MtlensError(f"{name}: unknown option(s) {', '.join(unknown)}; its options are: {', '.join(valid)}")
