"""Datasets with known generative factors, task generators, and multi-task datasets and loaders."""

from mtlens.data.base import FactorDataset, Source
from mtlens.data.paths import resolve_data_dir
from mtlens.data.registry import DATASETS
from mtlens.data import tiny  # noqa: F401  (registers)
from mtlens.data import mpi3d  # noqa: F401
from mtlens.data import dsprites  # noqa: F401
from mtlens.data import mnist, digit_tasks, digit_pairs, tabular  # noqa: F401  (register digit and UCI sets)
from mtlens.data import shapes3d  # noqa: F401


def create_dataset(name: str, **kwargs: object) -> object:
    """Returns the dataset registered under `name`, built with `kwargs` (e.g. data_dir=...).

    The data directory (`data_dir`, else $MTLENS_DATA) is checked here, once for every dataset: one that does
    not exist is an error, never a silent fall-back to a renderer.
    """
    kwargs["data_dir"] = resolve_data_dir(kwargs.get("data_dir"))  # type: ignore[arg-type]
    return DATASETS.create(name, **kwargs)


def available_datasets() -> list[str]:
    """Returns the names of the registered datasets."""
    return DATASETS.available()


__all__ = ["FactorDataset", "Source", "DATASETS", "create_dataset", "available_datasets", "resolve_data_dir"]
