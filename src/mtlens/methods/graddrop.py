"""GradDrop, gradient sign dropout (Chen et al. 2020, "Just Pick a Sign", Algorithm 1).

Per coordinate, the positive sign purity P = (1 + sum_i g_i / sum_i |g_i|) / 2; with U ~ Uniform(0, 1) drawn
per coordinate, task i keeps its gradient there when (P > U and g_i > 0) or (P < U and g_i < 0); kept gradients
(plus a leak fraction of the dropped ones) are summed. A coordinate where all gradients are zero has P = 1/2.

Levels (a choice, stated because the paper defines GradDrop on activations):
- level="feature" is the paper's: the Jacobian is w.r.t. the shared representation z [N, ...]; the purity is
  computed per feature from the batch-summed, sign-corrected gradients sum_n sign(z_n) * dL_i/dz_n (the
  paper's batch reduction, as LibMTL 1.1.5 does), and the mask, one per feature, applies to every sample.
  Called directly, `aggregate(jacobian, losses, activation=z)` does the same; without `activation` it masks
  per coordinate.
- level="param" masks each shared parameter's coordinate of the per-task gradients directly (no batch
  dimension, no sign correction), as TorchJD 0.18's `GradDrop` does on the Jacobian's columns.
The U draws come from the method's seeded `torch.Generator` (CPU, then moved), saved in `state_dict()`.
The reported weights are, per task, <kept part, g_i> / |g_i|^2 (1 when all of g_i is kept; 0 for a zero g_i).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import Seeded
from mtlens.methods._common import Aggregator, check_jacobian, compute_dtype
from mtlens.methods.options import PerTask
from mtlens.methods.registry import METHODS


def kept_fraction(kept: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """Returns <kept_t, g_t> / |g_t|^2 per task (0 for a zero g_t) in float64.

    Formed directly, unless a square over- or underflowed (or a row is zero): then both are first divided by
    max |g_t|, the same ratio at any scale.
    """
    sq, dot = (jacobian * jacobian).sum(dim=1), (kept * jacobian).sum(dim=1)
    if bool(torch.isfinite(sq).all() & torch.isfinite(dot).all() & (sq > 0).all()):
        return (dot / sq).to(torch.float64)
    peak = jacobian.abs().amax(dim=1, keepdim=True)
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))
    unit, kept_unit = jacobian / peak, kept / peak
    sq = (unit * unit).sum(dim=1)
    return torch.where(sq > 0, (kept_unit * unit).sum(dim=1) / torch.where(sq > 0, sq, 1.0), 0.0).to(torch.float64)


@METHODS.register("graddrop", aliases=("grad_drop", "gradient_sign_dropout"))
class GradDrop(Seeded, Aggregator):
    """Keeps, per coordinate, only the gradients of one randomly chosen sign (chosen by sign purity)."""

    name = "graddrop"
    claims = frozenset({"permutation_invariant", "scale_equivariant", "finite_on_zero", "finite_on_rank1"})
    exemptions = {
        "non_conflicting": "the sign masks drop coordinates independently of the other tasks' inner products",
        "scale_invariant": "the update is the sum of the kept gradients: it scales with them",
        "levels_agree": (
            "level 'feature' is the paper's rule (purity from the batch-summed, sign-corrected representation "
            "gradients), level 'param' masks every coordinate"
        ),
    }
    option_rules = {"leak": PerTask(0.0, 1.0, scalar=True)}
    #: One leak for every task (a float), or one per task (a float64 tensor [n_tasks]; then n_tasks is fixed).
    leak: float | torch.Tensor

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        leak: float | Sequence[float] = 0.0,
        seed: int = 0,
        batched: bool = True,
    ) -> None:
        super().__init__(n_tasks, level, batched, leak=leak, seed=seed)
        self._init_rng()
        self._activation: torch.Tensor | None = None
        self._batch_activation: torch.Tensor | None = None

    def aggregate(  # type: ignore[override]
        self, jacobian: torch.Tensor, losses: torch.Tensor | None = None, activation: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the masked sum [P]; `activation` (the representation, P values) enables the paper's batch rule."""
        if activation is not None:
            check_jacobian(jacobian, self.n_tasks, self.name)
            if activation.numel() != jacobian.shape[1] or activation.ndim < 2:
                raise MtlensError(
                    f"graddrop: activation has shape {tuple(activation.shape)} but the gradients have "
                    f"{jacobian.shape[1]} entries; pass the representation [N, ...] the Jacobian is taken of"
                )
        self._activation = activation
        try:
            return super().aggregate(jacobian, losses)
        finally:
            self._activation = None

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        if self.level != "feature":
            return super()._backward(losses, shared, representation, task_params)
        self._batch_activation = representation.detach()
        try:
            return super()._backward(losses, shared, representation, task_params)
        finally:
            self._batch_activation = None

    def _aggregate(self, jacobian, losses):  # type: ignore[no-untyped-def]
        act = self._activation
        if act is None:
            act = self._batch_activation
        n = jacobian.shape[0]
        jacobian = jacobian.to(compute_dtype(jacobian))  # 16-bit sums over tasks overflow
        if act is not None:
            per_sample = jacobian.view(n, act.shape[0], -1)
            signed = (per_sample * act.reshape(1, act.shape[0], -1).sign().to(jacobian.dtype)).sum(dim=1)
        else:
            per_sample = jacobian.view(n, 1, -1)
            signed = jacobian
        total = signed.sum(dim=0)
        abs_total = signed.abs().sum(dim=0)
        purity = torch.where(abs_total > 0, 0.5 * (1 + total / abs_total.clamp_min(1e-300)), 0.5)
        u = torch.rand(purity.shape, generator=self.generator, dtype=purity.dtype).to(purity.device)
        keep = ((purity > u) & (signed > 0)) | ((purity < u) & (signed < 0))  # [T, features]
        leak = torch.as_tensor(self.leak, dtype=jacobian.dtype).to(jacobian.device).expand(n).reshape(n, 1)
        factor = leak + (1 - leak) * keep.to(jacobian.dtype)  # [T, features]
        kept = per_sample * factor.unsqueeze(1)  # broadcast over the batch
        kept = kept.reshape(n, -1)
        return kept.sum(dim=0), kept_fraction(kept, jacobian)
