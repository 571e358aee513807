"""PCD, priority-constrained descent, as TorchJD 0.18 defines it (`torchjd.aggregation.PCD`, after "Not All
Objectives Are Born Equal: Priority-Constrained Descent for Hierarchical Multi-Objective Optimization").

Task 0 (the first row) is the primary objective, the others secondary. With s_t = 1 / sqrt(v_t + eps) the
scale of task t (v_t the bias-corrected exponential moving average, decay beta, of |g_t|^2 over the calls)
and g~_t = s_t g_t, the direction

    d~ = argmin_d |d - g~_0|^2 / 2   subject to   <g~_j, d> >= tau |g~_j|^2   for j = 1 .. T-1

follows the primary gradient as closely as possible while every secondary objective keeps a fraction tau of
the progress a step along its own normalised gradient would give; the update is d~ rescaled to |g_0|. The
program is a projection, solved exactly on the Gram matrix by `_qp.nonneg_qp` (d~ = g~_0 + sum_j mu_j g~_j,
mu >= 0 its multipliers): the dual active-set method that TorchJD uses too (Goldfarb & Idnani 1983), with
its tolerances (1e-9 for met constraints and for linear dependence). Defined cases, as TorchJD's: infeasible
constraints give the primary gradient; a zero primary gradient gives a zero update; a direction that is zero
up to rounding gives a zero update; a task whose average is zero has scale 0.

Defaults (TorchJD's): tau = 0.02, beta = 0.999, eps = 1e-8. TorchJD also accepts one tau per secondary task;
here tau is one number. The moving average is per task, so n_tasks is fixed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtlens.methods._common import GramAggregator
from mtlens.methods._qp import nonneg_qp
from mtlens.methods.options import Real
from mtlens.methods.registry import METHODS


@METHODS.register("pcd", aliases=("priority_constrained_descent",))
class PCD(GramAggregator):
    """Follows task 0's gradient, keeping a fraction tau of normalised progress for every other task."""

    name = "pcd"
    per_task_state = True
    exact_gram = True
    state_keys = ("sq_norm_average", "calls")
    claims = frozenset({"finite_on_zero", "finite_on_rank1", "levels_agree"})
    exemptions = {
        "permutation_invariant": "the first task is the primary objective: the tasks' order is part of the method",
        "non_conflicting": (
            "only the secondary tasks get guaranteed progress; infeasible constraints fall back to the primary "
            "gradient, which can conflict with them"
        ),
        "scale_equivariant": (
            "eps = 1e-8 is added to the squared-norm average, so gradients with squared norms near 1e-8 are "
            "normalised differently"
        ),
        "scale_invariant": "the update has the primary gradient's norm: it scales with the gradients",
    }
    option_rules = {"tau": Real(0.0, 1.0), "beta": Real(0.0, 1.0, high_open=True), "eps": Real(0.0)}
    tau: float
    beta: float
    eps: float

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        tau: float = 0.02,
        beta: float = 0.999,
        eps: float = 1e-8,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, tau=tau, beta=beta, eps=eps)
        #: The (biased) moving average of the squared gradient norms, and the number of calls folded into it.
        self.sq_norm_average = torch.zeros(self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type]
        self.calls = 0
        self._dtype = torch.float32  # the dtype the Gram matrix was formed in (its precision)

    def _scales(self, sq_norms: torch.Tensor) -> torch.Tensor:
        self.sq_norm_average = self.beta * self.sq_norm_average + (1.0 - self.beta) * sq_norms
        self.calls += 1
        debiased = self.sq_norm_average / (1.0 - self.beta**self.calls)
        root = (debiased + self.eps).sqrt()
        return torch.where(root > 0, 1.0 / torch.where(root > 0, root, 1.0), 0.0)

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        # the average is kept for the raw gradients: squared norms scale by scale^2
        sq_norms = g.diagonal() * (scale * scale)
        scales = self._scales(sq_norms) * scale  # the scales of the rows of J / scale
        n = g.shape[0]
        weights = torch.zeros(n, dtype=torch.float64)
        if float(g[0, 0]) <= 0.0:
            return weights
        normed = (g * torch.outer(scales, scales)).numpy()
        secondary = normed[1:, 1:]
        b = self.tau * np.diagonal(secondary) - normed[1:, 0]
        mu, feasible = nonneg_qp(secondary, b, tol=1e-9, dependence_tol=max(1e-9, self._precision),
                                 where=f"pcd (step {self.step})")
        w = np.concatenate([[1.0], mu if feasible else np.zeros(n - 1)])
        norm_sq = float(w @ normed @ w)
        magnitude = float(np.abs(w) @ np.sqrt(np.clip(np.diagonal(normed), 0.0, None))) ** 2
        if norm_sq > self._precision * magnitude:
            # scales already carry the factor `scale` that turns the rows of J / scale back into J's
            weights = torch.from_numpy(w) * scales * math.sqrt(float(g[0, 0]) / norm_sq)
        return weights

    @property
    def _precision(self) -> float:
        # the relative precision of a Gram matrix formed in float32 (or float64 for float64 Jacobians)
        return 10.0 * torch.finfo(self._dtype).eps

    def weights_from(self, jacobian, losses):  # type: ignore[no-untyped-def]
        # The solver's tolerances are relative to the Gram matrix's precision: float64 here (`exact_gram`); on
        # the `gramian=True` path G comes from autograd in the parameters' dtype, and its precision is that.
        self._dtype = torch.float64
        try:
            return super().weights_from(jacobian, losses)
        finally:
            self._dtype = torch.float32

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict`."""
        super().load_state_dict(state)
        self.sq_norm_average = self.sq_norm_average.clone()
