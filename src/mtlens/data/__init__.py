"""Datasets with known generative factors, task generators, and multi-task datasets and loaders."""

from mtlens.data.base import FactorDataset, Source
from mtlens.data.paths import resolve_data_dir
from mtlens.data.registry import DATASETS
from mtlens.data import tiny  # noqa: F401  (registers)


def create_dataset(name: str, **kwargs: object) -> object:
    """Returns the dataset registered under `name`, built with `kwargs` (e.g. data_dir=...)."""
    return DATASETS.create(name, **kwargs)


def available_datasets() -> list[str]:
    """Returns the names of the registered datasets."""
    return DATASETS.available()


__all__ = ["FactorDataset", "Source", "DATASETS", "create_dataset", "available_datasets", "resolve_data_dir"]
