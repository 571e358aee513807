"""RGW, random gradient weighting (Lin et al. 2022, "Reasonable Effectiveness of Random Weighting",
Algorithm 2): at every step, weights softmax(z) with z ~ N(0, I_T), applied to the task gradients.

The normal draws come from the method's own seeded `torch.Generator` (state saved in `state_dict()`);
TorchJD 0.18 (`Random`) draws `torch.randn(T)` from the global generator, so with equal seeds the two agree
exactly. The weights sum to one (a point of the simplex), as in the paper; random loss weighting (RLW), the
same draw applied to the losses, is a separate loss-weighting method.
"""

from __future__ import annotations

import torch

from mtlens.methods._common import SeededGramAggregator
from mtlens.methods.registry import METHODS


@METHODS.register("rgw", aliases=("random_gradient_weighting",))
class RGW(SeededGramAggregator):
    """Combines the task gradients with softmax-normalised standard normal weights, fresh every step."""

    name = "rgw"
    claims = frozenset({"scale_equivariant", "finite_on_zero", "finite_on_rank1", "levels_agree"})
    exemptions = {
        "permutation_invariant": "the random weights are drawn per row position (invariant in distribution only)",
        "non_conflicting": "random convex weights can point against a task",
        "scale_invariant": "a convex combination of the gradients scales with them",
    }

    uses_gram = False  # the weights are drawn, not computed: with gramian=True no Jacobian is formed at all

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        return torch.softmax(torch.randn(g.shape[0], generator=self.generator), dim=0)
