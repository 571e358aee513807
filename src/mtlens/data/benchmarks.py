"""The Trainer's data mapping of an image benchmark: `benchmark_splits(name, **options)`."""

from __future__ import annotations

from typing import Any

from mtlens.data.registry import create_benchmark


def benchmark_splits(name: str, **options: Any) -> dict[str, Any]:
    """Returns {"train", "val", "test"} splits of a benchmark (the Trainer's data mapping).

    The preprocessed NYU-v2 / CityScapes sets hold no test images: their "val" and "test" are the same folder,
    as in MTAN and LibMTL.
    """
    out = {"train": create_benchmark(name, "train", **options), "val": create_benchmark(name, "val", **options)}
    # Where the test split is the validation folder, it is read (and checked) once.
    out["test"] = out["val"] if getattr(out["val"], "test_is_val", False) else create_benchmark(name, "test", **options)
    return out
