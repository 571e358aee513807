"""The registry of real-image multi-task benchmarks with official splits (NYU-v2, CityScapes, CelebA) and of
the procedural dense benchmark: `mtlens.data.benchmarks.create_benchmark(name, split=..., data_dir=...)`."""

from __future__ import annotations

from mtlens.registry import Registry

BENCHMARKS: Registry[object] = Registry("benchmark")
