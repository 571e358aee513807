"""GradVac, Gradient Vaccine (Wang et al. 2021, ICLR, Algorithm 1).

Each pair (i, j) has a target cosine similarity phi_hat_ij, an exponential moving average of the observed
similarities (phi_hat <- (1 - beta) phi_hat + beta phi, starting at 0). For each task i, visiting the other
tasks in random order, when cos(g_i', g_j) = phi < phi_hat the modified gradient g_i' gets the multiple of
g_j that raises its cosine with g_j to exactly phi_hat:
    g_i' += |g_i'| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2)) / (|g_j| sqrt(1 - phi_hat^2)) g_j.
The update is the sum of the g_i'. With phi_hat = 0 this is PCGrad's projection.

Choices: granularity is the whole shared-parameter vector (one phi_hat per pair), the paper also applies it
per layer or block and LibMTL's later versions offer per-layer; here the Jacobian given is one block. The
EMA is updated for every visited pair (after the correction test), as the paper's Algorithm 1 and TorchJD
0.18 do; LibMTL 1.1.5 updates it only when a correction was made. beta = 0.5 is LibMTL's and TorchJD's
default. A pair where either gradient is zero has no cosine: it is skipped (no correction, no EMA update).
Orders come from a seeded `torch.Generator` (`randperm(T - 1)` over the other tasks per task, TorchJD's
draw), saved with the targets in `state_dict()`.
"""

from __future__ import annotations

import math

import torch

from mtlens.methods.base import Seeded
from mtlens.methods._common import GramAggregator
from mtlens.methods.options import Real
from mtlens.methods.registry import METHODS


@METHODS.register("gradvac", aliases=("grad_vac", "gradient_vaccine"))
class GradVac(Seeded, GramAggregator):
    """Raises each pair's gradient cosine to its EMA target; sums the modified gradients."""

    name = "gradvac"
    claims = frozenset({"scale_equivariant", "finite_on_zero", "finite_on_rank1", "levels_agree"})
    exemptions = {
        "permutation_invariant": (
            "the visiting order is drawn at random per row position and the targets are kept per task pair"
        ),
        "non_conflicting": "it raises cosines towards EMA targets, which can stay negative",
        "scale_invariant": "the update is the sum of the corrected gradients: it scales with them",
    }
    per_task_state = True
    state_keys = ("targets",)
    option_rules = {"beta": Real(0.0, 1.0)}
    beta: float

    def __init__(
        self, n_tasks: int | None = None, level: str = "param", beta: float = 0.5, seed: int = 0,
        batched: bool = True, gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, beta=beta, seed=seed)
        self._init_rng()
        #: phi_hat[i, j], the EMA target cosine of the pair (float64, CPU).
        self.targets = torch.zeros(self.n_tasks, self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type]

    def _gram_weights(self, gram_matrix, scale, losses):  # type: ignore[no-untyped-def]
        n = gram_matrix.shape[0]
        g = gram_matrix.tolist()  # cosines and norm ratios do not depend on the scale
        phi_hat = self.targets.tolist()
        coeff = [[1.0 if k == i else 0.0 for k in range(n)] for i in range(n)]
        for i in range(n):
            others = [j for j in range(n) if j != i]
            perm = torch.randperm(n - 1, generator=self.generator).tolist()
            row = coeff[i]
            # <g_i', g_k> for every k, kept up to date as g_i' changes
            dots = [sum(row[m] * g[m][k] for m in range(n)) for k in range(n)]
            for j in (others[p] for p in perm):
                norm_i = math.sqrt(max(sum(row[k] * dots[k] for k in range(n)), 0.0))
                norm_j = math.sqrt(max(g[j][j], 0.0))
                if norm_i == 0.0 or norm_j == 0.0:
                    continue
                phi = dots[j] / (norm_i * norm_j)
                target = phi_hat[i][j]
                if phi < target < 1.0:  # a target of 1 would need an infinite correction
                    w = norm_i * (target * math.sqrt(max(1 - phi * phi, 0.0)) - phi * math.sqrt(1 - target * target))
                    w /= norm_j * math.sqrt(1 - target * target)
                    row[j] += w
                    dots = [dots[k] + w * g[j][k] for k in range(n)]
                phi_hat[i][j] = (1 - self.beta) * target + self.beta * phi
        self.targets = torch.tensor(phi_hat, dtype=torch.float64)
        return torch.tensor(coeff, dtype=torch.float64).sum(dim=0)
