"""ConFIG, conflict-free gradients (Liu, Chu, Thuerey & Gao 2024, "ConFIG: Towards Conflict-free Training of
Physics Informed Neural Networks", eq. 2).

With u_t = g_t / |g_t| the unit task gradients and w the preference weights (default ones, the paper's), the
direction is b = U^+ w (the pseudo-inverse of the [T, P] matrix of unit gradients: <u_t, b> = w_t when the
gradients are independent, i.e. every task improves), and the update is b rescaled to the length
sum_t <g_t, b / |b|>:

    d = (sum_t <g_t, b_hat>) b_hat,   b_hat = b / |b|.

Gram form: U^+ = U^T (U U^T)^+, so b = sum_t c_t g_t with c = D^-1 (D^-1 G D^-1)^+ w (D = diag |g_t|), and
d = (1^T G c / c^T G c) sum_t c_t g_t. The pseudo-inverse drops the eigenvalues of the unit Gram matrix below
T * eps(float64) times the largest (rank-deficient gradients, e.g. more tasks than coordinates); G is formed
in float64 from the gradients' values whatever their dtype, so the rank decision does not depend on it; TorchJD 0.18 takes `pinv` of the [T, P] unit matrix itself, which
agrees to rounding where the gradients are independent. Nearly dependent gradients (e.g. two nearly opposite
ones) make b's direction ill-conditioned, but never its length: |d| <= sum_t |g_t|. A zero gradient is left out (its unit vector
is zero, as in TorchJD's nan_to_num); when b = 0 the update is zero. The momentum variant M-ConFIG (alternating
task updates with per-task momenta) needs one backward per task per step by design and is not included.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtlens.methods._common import GramAggregator
from mtlens.methods.options import PerTask
from mtlens.methods.registry import METHODS


def config_weights(g: torch.Tensor, preference: torch.Tensor, eps: float) -> torch.Tensor:
    """Returns the weights on the raw gradients of ConFIG's update for the Gram matrix g (float64)."""
    norms = g.diagonal().clamp_min(0).sqrt()
    inv = torch.where(norms > 0, 1.0 / torch.where(norms > 0, norms, 1.0), 0.0)
    unit = g * torch.outer(inv, inv)
    lam, vecs = torch.linalg.eigh(unit)
    keep = lam > lam.max().clamp_min(0) * g.shape[0] * eps
    if not bool(keep.any()):
        return torch.zeros_like(norms)
    pinv = (vecs[:, keep] / lam[keep]) @ vecs[:, keep].T
    c = inv * (pinv @ preference)
    length_sq = float(c @ g @ c)
    if length_sq <= 0.0:
        return torch.zeros_like(norms)
    return c * (float((g @ c).sum()) / length_sq)


@METHODS.register("config", aliases=("con_fig", "conflict_free"))
class ConFIG(GramAggregator):
    """The direction with equal (preference-weighted) progress on every unit task gradient, at the summed length."""

    name = "config"
    exact_gram = True  # the pseudo-inverse's rank decision must not depend on the Jacobian's dtype
    claims = frozenset({
        "permutation_invariant", "non_conflicting", "scale_equivariant", "finite_on_zero", "finite_on_rank1",
        "levels_agree",
    })
    exemptions = {"scale_invariant": "the length sum_t <g_t, b_hat> scales with the gradients"}
    option_rules = {"preference": PerTask(0.0, optional=True)}
    preference: torch.Tensor | None

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        preference: Sequence[float] | None = None,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, preference=preference)

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        n = g.shape[0]
        pref = torch.ones(n, dtype=torch.float64) if self.preference is None else self.preference
        return config_weights(g, pref, torch.finfo(torch.float64).eps)
