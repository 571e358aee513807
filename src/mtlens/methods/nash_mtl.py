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
strictly convex a^T G a / 2 - sum log a (damped Newton, `_solvers.nash_weights`, to 1e-10), so no cvxpy
dependency; a failure raises MtlensError naming the step. Defined cases: a task whose gradient is exactly
zero takes weight 0 (its weight cannot change the update) and the bargaining is solved among the others;
gradients with a zero convex combination (e.g. two exactly opposite ones) have no solution and raise.
"""

from __future__ import annotations

import numpy as np
import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import Aggregator, combine, gram
from mtlens.methods._solvers import nash_weights
from mtlens.methods.registry import METHODS


@METHODS.register("nash_mtl", aliases=("nash", "nashmtl", "nash-mtl"))
class NashMTL(Aggregator):
    """Weights alpha > 0 with (G alpha)_t = 1 / alpha_t: the Nash bargaining solution among the tasks."""

    name = "nash_mtl"
    state_keys = ("prev_weights",)

    def __init__(
        self,
        n_tasks: int,
        level: str = "param",
        update_weights_every: int = 1,
        max_norm: float = 1.0,
        max_iter: int = 100,
        batched: bool = True,
    ) -> None:
        super().__init__(n_tasks, level, batched)
        if update_weights_every < 1:
            raise MtlensError(f"nash_mtl: update_weights_every must be >= 1, got {update_weights_every}")
        if max_norm < 0:
            raise MtlensError(f"nash_mtl: max_norm must be >= 0 (0 disables clipping), got {max_norm}")
        self.update_weights_every = update_weights_every
        self.max_norm = float(max_norm)
        self.max_iter = max_iter
        #: The last solved weights (float64, CPU), reused between updates; the authors start from ones.
        self.prev_weights = torch.ones(n_tasks, dtype=torch.float64)

    def solve(self, g: torch.Tensor) -> torch.Tensor:
        """Returns the bargaining weights [T] for the Gram matrix `g` (float64), warm-started; updates the state."""
        norm = float(torch.linalg.matrix_norm(g))
        alpha = torch.zeros(self.n_tasks, dtype=torch.float64)
        live = (g.diagonal() > 0).nonzero().flatten()
        if norm > 0 and len(live) > 0:
            sub = (g / norm)[live][:, live].numpy()
            prev = self.prev_weights[live] * norm**0.5  # warm start in the normalised problem's scale
            init = torch.where(prev > 0, prev, torch.ones_like(prev)).numpy()
            sol = nash_weights(sub, init, max_iter=self.max_iter, where=f"nash_mtl (step {self.step})")
            alpha[live] = torch.from_numpy(np.asarray(sol)) / norm**0.5
        self.prev_weights = alpha
        return alpha.clone()

    def _aggregate(self, jacobian, losses):  # type: ignore[no-untyped-def]
        # The schedule counts `backward` calls (self.step); a direct `aggregate` call always solves at step 0.
        if self.step % self.update_weights_every == 0:
            alpha = self.solve(gram(jacobian))
        else:
            alpha = self.prev_weights.clone()
        direction = combine(alpha, jacobian)
        if self.max_norm > 0:
            norm = float(direction.norm())
            if norm > self.max_norm:
                scale = self.max_norm / norm
                direction = direction * scale
                alpha = alpha * scale
        return direction, alpha
