"""ExcessMTL (He, Zhou, Zhao & Jordan 2024, ICML, "Robust Multi-Task Learning with Excess Risks", Algorithm 1).

Task weights move towards the tasks with the largest excess risk (how far a task is from its own optimum),
estimated by a second-order expansion with an AdaGrad diagonal Hessian (eqs. 6-7):

    S_t <- S_t + g_t^2,   E_t = g_t^T diag(sqrt(S_t + 1e-7))^-1 g_t,

divided by the task's baseline E_t(0) (the scale processing of §3.2), and an exponentiated-gradient step
(eq. 9): w_t <- w_t exp(eta E_t / E_t(0)), renormalised. The update is sum_t w_t g_t.

Schedule, as the authors' code (in LibMTL, `weighting/ExcessMTL.py`): the weights start at 1 (they sum to T,
so the update starts as equal weighting); the first `warmup_steps` calls only collect statistics and the
baseline is their average E (the authors use one call; the paper's App. C.1 collects three epochs: set
warmup_steps to 3 * steps per epoch). Default step size eta = 1e-2 (LibMTL's). A task whose baseline is 0
(no gradient yet) gets ratio 0 rather than a division by zero.

TorchJD 0.18's ExcessMTL keeps the weights on the simplex (sum 1, so its update is ours / T), and with
n_warmup_steps = 0 (its default) updates the weights with the raw E at the first call; with
n_warmup_steps = k >= 1 it equals ours with warmup_steps = k, divided by T (tests/methods/test_peer_aggregators.py).

Levels: at "param" the statistics are per shared parameter; at "feature" they come from the representation
gradients summed over the batch (a fixed-size [T, d] statistic, LibMTL's rule for representation gradients),
and the weights then combine the per-sample representation gradients.
"""

from __future__ import annotations

import torch

from mtlens.methods._common import combine, compute_dtype
from mtlens.methods._tracking import TrackingAggregator
from mtlens.methods.options import Integer, Real
from mtlens.methods.registry import METHODS

_HESSIAN_EPS = 1e-7  # the authors' offset under the square root


@METHODS.register("excess_mtl", aliases=("excessmtl",))
class ExcessMTL(TrackingAggregator):
    """Exponentiated-gradient task weights driven by each task's estimated excess risk."""

    name = "excess_mtl"
    weighted = True
    buffer_keys = ("sq_sum",)
    state_keys = ("sq_sum", "log_weights", "baseline", "warm_sum", "calls")
    claims = frozenset({"permutation_invariant", "finite_on_zero", "finite_on_rank1"})
    exemptions = {
        "non_conflicting": "the weights follow excess risks, not the gradients' angles",
        "scale_equivariant": (
            "the 1e-7 under the AdaGrad square root makes gradients with squared sums near 1e-7 weigh differently"
        ),
        "scale_invariant": "the update is a weighted sum of the gradients: it scales with them",
        "levels_agree": (
            "at level 'feature' the statistics are batch sums of the representation gradients (LibMTL's rule), "
            "at 'param' one per parameter"
        ),
    }
    option_rules = {"robust_step_size": Real(0.0, low_open=True), "warmup_steps": Integer(1)}
    robust_step_size: float
    warmup_steps: int

    def __init__(self, n_tasks: int | None = None, level: str = "param", robust_step_size: float = 1e-2,
                 warmup_steps: int = 1, batched: bool = True) -> None:
        super().__init__(n_tasks, level, batched, robust_step_size=robust_step_size, warmup_steps=warmup_steps)
        n = self.n_tasks
        self.sq_sum: torch.Tensor | None = None
        self.log_weights = torch.zeros(n, dtype=torch.float64)  # type: ignore[arg-type]
        self.baseline = torch.zeros(n, dtype=torch.float64)  # type: ignore[arg-type]
        self.warm_sum = torch.zeros(n, dtype=torch.float64)  # type: ignore[arg-type]
        self.calls = 0
        self._batch: int | None = None

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        self._batch = representation.shape[0] if self.level == "feature" else None
        try:
            return super()._backward(losses, shared, representation, task_params)
        finally:
            self._batch = None

    def _aggregate(self, jacobian, losses):  # type: ignore[no-untyped-def]
        n = jacobian.shape[0]
        stats = jacobian.to(compute_dtype(jacobian))
        if self._batch is not None:
            stats = stats.view(n, self._batch, -1).sum(dim=1)
        # in the compute dtype, as TorchJD: a float64 copy of [T, P] statistics (or a float64 sum over them)
        # would double the time of the step's aggregation and the state's size
        sq = stats * stats
        sq_sum = self._buffer("sq_sum", sq).add_(sq)  # in place: state_dict() saves a copy
        self.sq_sum = sq_sum
        denominator = (sq_sum + _HESSIAN_EPS).sqrt_()
        excess = sq.div_(denominator).sum(dim=1).to(device="cpu", dtype=torch.float64)
        self.calls += 1
        if self.calls <= self.warmup_steps:
            self.warm_sum = self.warm_sum + excess
            if self.calls == self.warmup_steps:
                self.baseline = self.warm_sum / self.warmup_steps
        else:
            safe = torch.where(self.baseline > 0, self.baseline, 1.0)
            ratio = torch.where(self.baseline > 0, excess / safe, 0.0)
            logits = self.log_weights + self.robust_step_size * ratio
            self.log_weights = logits - torch.logsumexp(logits, dim=0)  # log of weights summing to 1
        weights = n * self.log_weights.exp() if self.calls > self.warmup_steps else torch.ones(n, dtype=torch.float64)
        return combine(weights, jacobian), weights
