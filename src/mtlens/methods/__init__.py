"""MTL optimisation methods: loss weighting, gradient aggregation, gradient regularisation.

Kinds: loss weightings and scalarisations (`LossWeighting`: ew, mean, constant, rlw, dwa, uncertainty, gradnorm,
famo, imtl_l, gls, stch, pbi, cosmos, auto_lambda), gradient aggregators (`GradientAggregator`: pcgrad, gradvac,
graddrop, rgw, mgda, cagrad, nash_mtl, aligned_mtl, imtl_g, imtl, upgrad, dualproj, config, fairgrad, sdmgrad,
modo, moco, db_mtl, excess_mtl, pcd, krum, trimmed_mean, cr_mogm) and a regulariser (cosreg).
`create_method(name, n_tasks, level=..., **options)` builds one (its options checked first, as
`check_method_options` does without building); `available_methods()` lists the names. A method's life cycle
in any training loop (`to`, `parameters`, `backward`, `after_step`, `epoch_end`, `state_dict`) is described
once, in `mtlens.methods.base`.
"""

from __future__ import annotations

from typing import Any

from mtlens.methods import ew  # noqa: F401  (registers)
from mtlens.methods import dwa, famo, gradnorm, imtl_l, rlw, uncertainty  # noqa: F401  (registers)
from mtlens.methods import aligned_mtl, cagrad, cosreg, graddrop, gradvac, imtl, mgda, nash_mtl, pcgrad, rgw  # noqa: F401  (registers)
from mtlens.methods import (  # noqa: F401  (registers)
    auto_lambda, conflict_free, cr_mogm, db_mtl, excess_mtl, fairgrad, moco, pcd, robust, scalarizations, sdmgrad, stch,
    upgrad,
)
from mtlens.methods.base import GradientAggregator, LossWeighting, Method
from mtlens.methods.gradients import shared_jacobian, task_jacobian, vjp_rows
from mtlens.methods.options import check_method_options
from mtlens.methods.registry import METHODS


def create_method(name: str, n_tasks: int | None = None, level: str = "param", **options: Any) -> Method:
    """Returns a new method object registered under `name` for `n_tasks` tasks (None: any number, where the
    method keeps no per-task state), or raises MtlensError naming a bad name, task count, level or option."""
    check_method_options(name, n_tasks, level, options)
    return METHODS.create(name, n_tasks, level, **options)


def available_methods() -> list[str]:
    """Returns the registered method names."""
    return METHODS.available()


__all__ = ["Method", "LossWeighting", "GradientAggregator", "create_method", "available_methods",
           "check_method_options", "task_jacobian", "shared_jacobian", "vjp_rows", "METHODS"]
