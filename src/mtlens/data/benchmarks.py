"""Multi-task image benchmarks with their splits: `create_benchmark(name, split=..., data_dir=..., **options)`.

Registered: nyuv2 and cityscapes (preprocessed dense sets, `dense_npy`), shapes3d_dense (the procedural dense
benchmark, `shapes3d_dense`) and celeba (`celeba`).
"""

from __future__ import annotations

from typing import Any

from mtlens.data import celeba, dense_npy, shapes3d_dense  # noqa: F401  (register)
from mtlens.data.benchmark_registry import BENCHMARKS

SPLIT_NAMES = ("train", "val", "test")


def create_benchmark(name: str, split: str = "train", **options: Any) -> Any:
    """Returns one split of the benchmark registered under `name`, built with `options` (data_dir=..., ...)."""
    return BENCHMARKS.create(name, split=split, **options)


def benchmark_splits(name: str, **options: Any) -> dict[str, Any]:
    """Returns {"train", "val", "test"} splits of a benchmark (the Trainer's data mapping).

    The preprocessed NYU-v2 / CityScapes sets hold no test images: their "val" and "test" are the same folder,
    as in MTAN and LibMTL.
    """
    out = {"train": create_benchmark(name, "train", **options), "val": create_benchmark(name, "val", **options)}
    # Where the test split is the validation folder, it is read (and checked) once.
    out["test"] = out["val"] if getattr(out["val"], "test_is_val", False) else create_benchmark(name, "test", **options)
    return out


def available_benchmarks() -> list[str]:
    """Returns the registered benchmark names."""
    return BENCHMARKS.available()
