"""MTL optimisation methods: loss weighting, gradient aggregation, gradient regularisation.

`create_method(name, n_tasks, **options)` builds one; `available_methods()` lists the names. Each method is called once per
step from any training loop: `weights = method.backward(losses, shared_params, representation, task_params)`.
"""

from __future__ import annotations

from typing import Any

from mtlens.methods import ew  # noqa: F401  (registers)
from mtlens.methods import dwa, famo, gradnorm, imtl_l, rlw, uncertainty  # noqa: F401  (registers)
from mtlens.methods import aligned_mtl, cagrad, cosreg, graddrop, gradvac, imtl, mgda, nash_mtl, pcgrad, rgw  # noqa: F401  (registers)
from mtlens.methods.base import GradientAggregator, LossWeighting, Method
from mtlens.methods.gradients import task_jacobian, vjp_rows
from mtlens.methods.registry import METHODS


def create_method(name: str, n_tasks: int, **options: Any) -> Method:
    """Returns a new method object registered under `name` for `n_tasks` tasks."""
    return METHODS.create(name, n_tasks, **options)


def available_methods() -> list[str]:
    """Returns the registered method names."""
    return METHODS.available()


__all__ = ["Method", "LossWeighting", "GradientAggregator", "create_method", "available_methods", "task_jacobian", "vjp_rows", "METHODS"]
