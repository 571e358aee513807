"""PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", Algorithm 1).

For each task i, its gradient is projected, in a random order of the other tasks j, onto the normal plane of
g_j whenever the (already projected) g_i conflicts with g_j (negative inner product); the update is the sum of
the projected gradients. Every projection is a linear combination of the original gradients, so the method
works on the Gram matrix and returns weights: the update is sum_j w_j g_j.

Choices: the random order is drawn per task from the method's own seeded `torch.Generator` (one
`randperm(T)` per task, skipping i), saved in `state_dict()`. TorchJD 0.18 (`PCGrad`) draws the same
permutations from the global torch generator, so with equal seeds the two agree exactly. LibMTL 1.1.5
shuffles with Python's `random` and also projects g_i against its own original gradient (j = i), which the
paper's Algorithm 1 (j in the batch minus i) excludes; a zero gradient is never projected against (its
inner product is 0), so zero gradients give finite weights.
"""

from __future__ import annotations

import torch

from mtlens.methods._common import SeededGramAggregator
from mtlens.methods.registry import METHODS


def pcgrad_weights(gram_matrix: torch.Tensor, orders: list[torch.Tensor]) -> torch.Tensor:
    """Returns the [T] weights w with sum_i PC(g_i) = sum_j w_j g_j for the given per-task visiting orders.

    `orders[i]` is a permutation of range(T) (entry i is skipped). Row i of the coefficient matrix C holds
    PC(g_i) = sum_k C[i, k] g_k, so <PC(g_i), g_j> = (C[i] @ G)[j] needs only the Gram matrix G.
    """
    n = gram_matrix.shape[0]
    g = gram_matrix.tolist()  # Python floats: the loop is T^2 scalar steps
    coeff = [[1.0 if k == i else 0.0 for k in range(n)] for i in range(n)]
    for i in range(n):
        row = coeff[i]
        for j in orders[i].tolist():
            if j == i:
                continue
            dot = sum(row[k] * g[k][j] for k in range(n))
            if dot < 0.0:
                row[j] -= dot / g[j][j]
    return torch.tensor(coeff, dtype=torch.float64).sum(dim=0)


@METHODS.register("pcgrad", aliases=("pc_grad", "gradient_surgery"))
class PCGrad(SeededGramAggregator):
    """Projects each task gradient off the conflicting others, in a seeded random order; sums them."""

    name = "pcgrad"
    claims = frozenset({"scale_equivariant", "finite_on_zero", "finite_on_rank1", "levels_agree"})
    exemptions = {
        "permutation_invariant": (
            "the projection order is drawn at random per row position, so permuting the tasks changes the draws "
            "(invariant in distribution only)"
        ),
        "non_conflicting": (
            "only for two tasks; with three or more a later projection can undo an earlier one (Yu et al. 2020, "
            "TorchJD 0.18)"
        ),
        "scale_invariant": "the update is the sum of (projected) gradients: it scales with them",
    }

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        n = g.shape[0]
        orders = [torch.randperm(n, generator=self.generator) for _ in range(n)]
        return pcgrad_weights(g, orders)  # projections do not depend on the scale
