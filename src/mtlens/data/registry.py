"""The dataset registry: `create_dataset("dsprites", data_dir=...)` builds any factor or task dataset."""

from __future__ import annotations

from mtlens.registry import Registry

DATASETS: Registry[object] = Registry("dataset")
