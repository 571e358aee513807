"""CAGrad, conflict-averse gradient descent (Liu et al. 2021, NeurIPS, Algorithm 1 and the authors' code).

The update d maximises the worst task improvement min_i <g_i, d> within the ball |d - g0| <= c |g0| around the
mean gradient g0. Its dual: w on the simplex minimising w^T G 1/T + c |g0| |G_w| with G_w = sum_i w_i g_i
(`_solvers.cagrad_weights`, SLSQP as in the authors' code); then d = g0 + (c |g0| / |G_w|) G_w, divided by
the authors' `rescale` factor: 0 -> 1, 1 -> 1 + c^2, 2 -> 1 + c. The reported weights are those of d on the
raw gradients: 1/T + c |g0| w / |G_w|, divided by the same factor.

Defaults: c = 0.4 (the paper's value for NYUv2 and Cityscapes; LibMTL's default is 0.5), rescale = 1 (the
authors' and LibMTL's default). At c = 0 the update is the mean gradient. Defined cases: when g0 = 0 the ball
is the point 0 and the update is g0 = 0 (weights 1/T); when G_w = 0 (the Pareto front is reached) d = g0. LibMTL 1.1.5
hard-codes three tasks in its objective and solves the sub-problem on the unscaled Gram matrix; TorchJD 0.18
solves the same dual with cvxpy/Clarabel and has no rescale (it equals rescale = 0). A solver failure raises.
"""

from __future__ import annotations

import math

import torch

from mtlens.methods._common import GramAggregator
from mtlens.methods._solvers import cagrad_weights
from mtlens.methods.options import Choice, Real
from mtlens.methods.registry import METHODS


@METHODS.register("cagrad", aliases=("ca_grad", "conflict_averse"))
class CAGrad(GramAggregator):
    """Moves from the mean gradient towards the direction that best helps the worst task."""

    name = "cagrad"
    claims = frozenset({
        "permutation_invariant", "scale_equivariant", "finite_on_zero", "finite_on_rank1", "levels_agree"
    })
    exemptions = {
        "non_conflicting": (
            "only for c >= 1 (TorchJD 0.18 tests it there); the default c = 0.4 trades it for the mean gradient's"
            " progress"
        ),
        "scale_invariant": "the update is the mean gradient plus a correction, both scale with the gradients",
    }
    option_rules = {"c": Real(0.0), "rescale": Choice((0, 1, 2))}
    c: float
    rescale: int

    def __init__(
        self, n_tasks: int | None = None, level: str = "param", c: float = 0.4, rescale: int = 1,
        batched: bool = True, gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, c=c, rescale=rescale)

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        n = g.shape[0]  # the weights do not depend on the gradients' scale
        g0_sq = float(g.mean())
        weights = torch.full((n,), 1.0 / n, dtype=torch.float64)
        if self.c > 0 and g0_sq > 0:
            w = torch.from_numpy(cagrad_weights(g.numpy(), self.c, where=f"cagrad (step {self.step})"))
            gw_norm = math.sqrt(max(float(w @ g @ w), 0.0))
            if gw_norm > 0:
                weights = weights + (self.c * math.sqrt(g0_sq) / gw_norm) * w
        return weights / {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
