"""MGDA (Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization"): the update is the
minimum-norm point of the convex hull of the (normalised) task gradients.

The weights alpha on the simplex minimise |sum_t alpha_t g_t / n_t|^2, solved on the Gram matrix
(`_solvers.min_norm_weights`). solver="exact" (default, a choice): Wolfe's min-norm-point algorithm, which
ends at the minimum in finitely many steps; solver="frank_wolfe": the paper's Algorithm 2 with its code's
250 iterations / 1e-5 stop, which can stop short when the optimum lies on a face (as TorchJD 0.18's
Frank-Wolfe with its 1e-3 stop and LibMTL 1.1.5's projected-gradient solver do, by up to a few percent).
Normalisations n_t, as in the authors' `gradient_normalizers`: "none" (1), "l2" (|g_t|), "loss" (L_t),
"loss+" (L_t |g_t|). As in the authors' training script the weights alpha then scale the raw losses, so the
update is sum_t alpha_t g_t with the un-normalised gradients; LibMTL 1.1.5 instead applies alpha to the
normalised gradients at the parameter level (and to raw ones at the representation level). Defined cases:
a zero normaliser (zero gradient or zero loss) leaves that gradient un-normalised; a negative loss with
"loss"/"loss+" raises. A zero gradient makes the minimum norm 0: the update is 0, the weights are finite.
level="feature" is MGDA-UB (the paper's upper bound, gradients w.r.t. the shared representation).
"""

from __future__ import annotations

import numpy as np
import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import GramAggregator
from mtlens.methods._solvers import min_norm_weights
from mtlens.methods.options import Choice, Integer
from mtlens.methods.registry import METHODS

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@METHODS.register("mgda", aliases=("min_norm",))
class MGDA(GramAggregator):
    """Weights the task gradients by the minimum-norm point of their convex hull."""

    name = "mgda"
    claims = frozenset({
        "permutation_invariant", "non_conflicting", "scale_equivariant", "finite_on_zero", "finite_on_rank1",
        "levels_agree"
    })
    exemptions = {
        "scale_invariant": "the min-norm point scales with the gradients",
    }
    option_rules = {"normalization": Choice(NORMALIZATIONS), "solver": Choice(("exact", "frank_wolfe")),
                    "max_iter": Integer(1)}
    normalization: str
    solver: str
    max_iter: int

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        normalization: str = "none",
        solver: str = "exact",
        max_iter: int = 250,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, normalization=normalization, solver=solver,
                         max_iter=max_iter)

    def _normalizers(self, g: torch.Tensor, losses: torch.Tensor | None) -> torch.Tensor:
        norms = g.diagonal().clamp_min(0).sqrt()
        if self.normalization in ("loss", "loss+"):
            if losses is None:
                raise MtlensError(f"mgda: normalization {self.normalization!r} needs the task losses")
            loss = losses.to(device="cpu", dtype=torch.float64)
            if bool((loss < 0).any()):
                t = int((loss < 0).nonzero()[0, 0])
                raise MtlensError(
                    f"mgda: normalization {self.normalization!r} needs non-negative losses, task {t} has {float(loss[t])}"
                )
        if self.normalization == "none":
            n = torch.ones_like(norms)
        elif self.normalization == "l2":
            n = norms
        elif self.normalization == "loss":
            n = loss
        else:
            n = loss * norms
        return torch.where(n > 0, n, torch.ones_like(n))

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        n = self._normalizers(g, losses)  # the weights do not depend on the gradients' scale
        g_normed = g / torch.outer(n, n)
        alpha = min_norm_weights(g_normed.numpy(), self.solver, self.max_iter, where=f"mgda (step {self.step})")
        return torch.from_numpy(alpha)
