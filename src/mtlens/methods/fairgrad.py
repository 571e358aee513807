"""FairGrad (Ban & Ji 2024, "Fair Resource Allocation in Multi-Task Learning", Algorithm 1 and eq. 4).

The update d = sum_t x_t g_t allocates progress <g_t, d> = (G x)_t by alpha-fairness; its weights x > 0 solve

    G x = x^(-1/alpha)   (elementwise),

the stationarity conditions of max sum_t U_alpha(<g_t, d>). alpha = 0 is linear scalarisation (x = 1/T, the
paper's §3); alpha = 1 is proportional fairness (Nash-MTL's bargaining solution); alpha -> inf approaches
max-min fairness. Default alpha = 1.0 (the command-line default of LibMTL's FairGrad, taken from the authors'
code; the paper sweeps alpha in {0.5, 1, 2, 5, ...}).

Solver (a choice): the authors, LibMTL and TorchJD 0.18 call scipy's `least_squares` on G x - x^(-1/alpha) from
x = 1/T with bounds x >= 0 and its default tolerances; here the equations are solved as the minimum of a
strictly convex function by damped Newton steps, to 1e-12 relative (`_solvers.fair_weights`), on G / |G|_F with the
weights rescaled exactly (x = x' (s |G|_F)^(-alpha / (1 + alpha)) for G = s G'). The two agree to the
least-squares tolerance (1e-6 in the tests). Defined cases: a task whose gradient is exactly zero
takes weight 0 (no finite weight solves its equation, 0 = x^(-1/alpha)) and the others solve their own
allocation; gradients with a zero convex combination have no solution, and a one-line error says so.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtlens.methods._common import GramAggregator
from mtlens.methods._solvers import fair_weights
from mtlens.methods.options import Integer, Real
from mtlens.methods.registry import METHODS


@METHODS.register("fairgrad", aliases=("fair_grad",))
class FairGrad(GramAggregator):
    """Weights x > 0 with (G x)_t = x_t^(-1/alpha): alpha-fair progress for every task."""

    name = "fairgrad"
    claims = frozenset({
        "permutation_invariant", "non_conflicting", "scale_invariant", "finite_on_zero", "levels_agree"
    })
    exemptions = {
        "scale_equivariant": (
            "the update scales as a^((1 - alpha) / (1 + alpha)) with the gradients: at the default alpha = 1 "
            "it does not change with their scale"
        ),
        "finite_on_rank1": (
            "gradients of both signs along one direction have a zero convex combination: no fair allocation "
            "exists and a one-line MtlensError says so"
        ),
    }
    option_rules = {"alpha": Real(0.0), "max_iter": Integer(1)}
    alpha: float
    max_iter: int

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        alpha: float = 1.0,
        max_iter: int = 100,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, alpha=alpha, max_iter=max_iter)

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        n = g.shape[0]
        if self.alpha == 0.0:
            return torch.full((n,), 1.0 / n, dtype=torch.float64)
        x = torch.zeros(n, dtype=torch.float64)
        live = (g.diagonal() > 0).nonzero().flatten()
        norm = float(torch.linalg.matrix_norm(g))
        if norm > 0 and len(live) > 0:
            sub = (g / norm)[live][:, live].numpy()
            sol = fair_weights(sub, np.ones(len(live)), self.alpha, self.max_iter,
                               where=f"fairgrad (step {self.step})")
            # the raw Gram matrix is (scale^2 norm) times sub: x scales as that factor^(-alpha / (1 + alpha))
            factor = math.exp(-self.alpha / (1.0 + self.alpha) * (2.0 * math.log(scale) + math.log(norm)))
            x[live] = torch.from_numpy(np.asarray(sol)) * factor
        return x
