"""Nash-MTL (Navon et al. 2022, "Multi-Task Learning as a Bargaining Game", Algorithm 1).

The update is sum_t alpha_t g_t with alpha > 0 the Nash bargaining solution: G alpha = 1 / alpha elementwise,
G the Gram matrix of the task gradients. As in the authors' code, the solver works on G / |G|_F for
conditioning and the weights returned solve the raw equations (alpha = alpha_normalised / sqrt(|G|_F)); the
weights are recomputed every `update_weights_every` steps (reused in between), warm-started from the
previous ones, and the aggregated update is clipped to norm `max_norm` (0 disables). Published defaults:
update_weights_every = 1, max_norm = 1.0 (the authors' code; their clip runs before `backward` and so never
acts, TorchJD 0.18 clips the aggregated vector as here).

Solver (a choice): the authors run 20 iterations of a concave-convex procedure with cvxpy/ECOS and, when ECOS
fails, silently keep the previous weights. Here the equations are solved directly as the minimum of the
strictly convex a^T G a / 2 - sum log a (damped Newton, `_solvers.nash_weights`, to 1e-12), so no cvxpy
dependency; a failure raises MtlensError naming the step. Defined cases: a task whose gradient is exactly
zero takes weight 0 (its weight cannot change the update) and the bargaining is solved among the others;
gradients with a zero convex combination (e.g. two exactly opposite ones) have no solution and raise.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtlens.methods._common import GramAggregator, combine, gram
from mtlens.methods._solvers import nash_weights
from mtlens.methods.options import Integer, Real
from mtlens.methods.registry import METHODS


@METHODS.register("nash_mtl", aliases=("nash", "nashmtl", "nash-mtl"))
class NashMTL(GramAggregator):
    """Weights alpha > 0 with (G alpha)_t = 1 / alpha_t: the Nash bargaining solution among the tasks."""

    name = "nash_mtl"
    claims = frozenset({
        "permutation_invariant", "non_conflicting", "scale_invariant", "finite_on_zero", "levels_agree"
    })
    exemptions = {
        "scale_equivariant": (
            "the bargaining weights scale as 1 / |gradients|, so the update does not change with the scale"
        ),
        "finite_on_rank1": (
            "gradients of both signs along one direction have a zero convex combination: the bargaining solution "
            "does not exist and a one-line MtlensError says so"
        ),
    }
    per_task_state = True
    state_keys = ("prev_weights",)
    option_rules = {"update_weights_every": Integer(1), "max_norm": Real(0.0), "max_iter": Integer(1)}
    update_weights_every: int
    max_norm: float
    max_iter: int

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        update_weights_every: int = 1,
        max_norm: float = 1.0,
        max_iter: int = 100,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(
            n_tasks, level, batched, gramian, update_weights_every=update_weights_every, max_norm=max_norm,
            max_iter=max_iter,
        )
        #: The last solved weights (float64, CPU), reused between updates; the authors start from ones.
        self.prev_weights = torch.ones(self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type]

    def solve(self, g: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Returns the bargaining weights [T] of the gradients whose Gram matrix is `g` * scale^2 (g float64),
        warm-started from the previous weights; updates the state."""
        norm = float(torch.linalg.matrix_norm(g))
        alpha = torch.zeros(g.shape[0], dtype=torch.float64)
        live = (g.diagonal() > 0).nonzero().flatten()
        if norm > 0 and len(live) > 0:
            sub = (g / norm)[live][:, live].numpy()
            # the weights scale as 1 / |gradients|: the normalised problem's are scale * sqrt(norm) times larger
            prev = self.prev_weights[live] * (scale * norm**0.5)
            # a start far from the normalised problem's O(1) solution (the first step's ones at a gradient scale
            # far from 1) would cost Newton steps, or run past the solver's bound: start from ones instead
            usable = (prev > 1e-6) & (prev < 1e6)
            init = torch.where(usable, prev, torch.ones_like(prev)).numpy()
            sol = nash_weights(sub, init, max_iter=self.max_iter, where=f"nash_mtl (step {self.step})")
            alpha[live] = torch.from_numpy(np.asarray(sol)) / norm**0.5
        self.prev_weights = alpha / scale
        return alpha

    def _scaled_weights(self, g: torch.Tensor, scale: float) -> torch.Tensor:
        """Returns scale * alpha (alpha the raw weights), clipped so that |sum_t alpha_t g_t| <= max_norm."""
        # The schedule counts `backward` calls (self.step); a direct `aggregate` call always solves at step 0.
        if self.step % self.update_weights_every == 0:
            scaled_alpha = self.solve(g, scale)
        else:
            scaled_alpha = self.prev_weights * scale
        if self.max_norm > 0:
            # |sum_t alpha_t g_t|^2 = (scale alpha)^T (J J^T / scale^2) (scale alpha)
            norm = math.sqrt(max(float(scaled_alpha @ g @ scaled_alpha), 0.0))
            if norm > self.max_norm:
                scaled_alpha = scaled_alpha * (self.max_norm / norm)
        return scaled_alpha

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        return self._scaled_weights(g, scale) / scale

    def _aggregate(self, jacobian, losses):  # type: ignore[no-untyped-def]
        g, scale = gram(jacobian)
        scaled_alpha = self._scaled_weights(g, scale)
        # sum_t alpha_t g_t = sum_t (scale alpha_t) (g_t / scale): the second form stays in range at any scale
        return combine(scaled_alpha, jacobian, scale), scaled_alpha / scale
