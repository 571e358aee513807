"""DB-MTL, dual-balancing multi-task learning (Lin, Ye, Xu, Shi & Kwok 2023, "Dual-Balancing for Multi-Task
Learning", Algorithm 1).

Loss-scale balancing: every task trains on log(L_t + eps) (eps = 1e-8), whose gradient g_t / (L_t + eps) does
not depend on the loss's scale; the task heads get the gradient of sum_t log(L_t + eps). Gradient-magnitude
balancing: the shared parameters' log-loss gradients are averaged over steps,

    h_t <- g~_t + beta_k (h_t - g~_t),   beta_k = beta / k^beta_sigma   (k the call number, h = 0 at first),

and every average is scaled to the largest norm: update = sum_t (max_s |h_s| / |h_t|) h_t. Defaults: beta = 0.9,
beta_sigma = 0 (LibMTL's, whose DB-MTL is the authors' code). LibMTL divides by |h_t| + 1e-8; here a zero h_t
gets factor 0 (it adds nothing either way), so the update does not depend on the gradients' scale.

Level: "param" only (as LibMTL): the h_t are averaged across steps, and gradients w.r.t. the representation
belong to each step's own samples. The update is built from the averages h_t, not from this step's gradients.
"""

from __future__ import annotations

import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import compute_dtype
from mtlens.methods._tracking import PER_SAMPLE_REASON, TrackingAggregator
from mtlens.methods.options import Real
from mtlens.methods.registry import METHODS

_EPS = 1e-8  # the authors' offset inside the logarithm


@METHODS.register("db_mtl", aliases=("dbmtl", "dual_balancing"))
class DBMTL(TrackingAggregator):
    """Log-loss gradients, averaged over steps and scaled to the largest average's norm."""

    name = "db_mtl"
    levels = ("param",)
    level_reason = "it averages gradients across steps, and " + PER_SAMPLE_REASON
    buffer_keys = ("average",)
    state_keys = ("average", "calls")
    claims = frozenset({"permutation_invariant", "scale_equivariant", "finite_on_zero", "finite_on_rank1"})
    exemptions = {
        "non_conflicting": "every average is scaled to the largest norm and summed, whatever their angles",
        "scale_invariant": "the update has the largest averaged gradient's norm: it scales with the gradients",
        "levels_agree": f"defined at level 'param' only: {PER_SAMPLE_REASON}",
    }
    option_rules = {"beta": Real(0.0, 1.0), "beta_sigma": Real(0.0)}
    beta: float
    beta_sigma: float

    def __init__(self, n_tasks: int | None = None, level: str = "param", beta: float = 0.9, beta_sigma: float = 0.0,
                 batched: bool = True) -> None:
        super().__init__(n_tasks, level, batched, beta=beta, beta_sigma=beta_sigma)
        #: h, the averaged log-loss gradients [T, P] (None until the first call).
        self.average: torch.Tensor | None = None
        self.calls = 0

    def _shifted(self, losses: torch.Tensor) -> torch.Tensor:
        shifted = losses + _EPS
        bad = ~(shifted > 0)
        if bool(bad.any()):
            t = int(bad.nonzero()[0, 0])
            raise MtlensError(f"db_mtl: the loss of task {t} is {float(losses[t])}; DB-MTL takes log(L + 1e-8), so "
                              "losses must be > -1e-8")
        return shifted

    def head_objective(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns sum_t log(L_t + 1e-8): the heads train on the log losses."""
        return self._shifted(losses).log().sum()

    def _aggregate(self, jacobian, losses):  # type: ignore[no-untyped-def]
        if losses is None:
            raise MtlensError("db_mtl: aggregate needs the task losses (the gradients of log L are g / L)")
        work = jacobian.to(compute_dtype(jacobian))
        logged = work / self._shifted(losses.to(work)).unsqueeze(1)
        self.calls += 1
        average = self._buffer("average", logged)
        average = logged + (self.beta / self.calls**self.beta_sigma) * (average - logged)
        self.average = average
        peak = average.abs().amax(dim=1)  # norms in two steps: squares of tiny (or huge) entries under/overflow
        safe = torch.where(peak > 0, peak, torch.ones_like(peak))
        norms = peak * (average / safe.unsqueeze(1)).norm(dim=1)
        top = norms.max()
        factors = torch.where(norms > 0, top / torch.where(norms > 0, norms, torch.ones_like(norms)), 0.0)
        return factors @ average, factors.to(device="cpu", dtype=torch.float64)
