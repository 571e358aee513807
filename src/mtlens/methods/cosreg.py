"""CosReg (Suteu & Guo 2019, "Regularizing Deep Multi-Task Networks using Orthogonal Gradients").

A regulariser, not an aggregation: the loss is sum_t L_t + lambda * sum_{i<j} cos^2(g_i, g_j) with g_t the
gradient of L_t w.r.t. the shared parameters; minimising it pushes the task gradients towards orthogonality.
The g_t are taken with create_graph=True (one backward per task) so the penalty is differentiated through
them (a second-order term), and the total is backpropagated to every parameter in the graph (shared and task
heads alike, as any loss term). Pairs where a gradient is zero contribute 0 (their cosine is undefined).

Level: parameter only (the paper's quantity is about the shared parameters' gradients); the representation
argument is ignored. `weight` (lambda) has no published default that we could confirm; 1.0 is a neutral
starting point to tune. The weights returned are ones (each loss enters the sum unweighted); the last
penalty value is kept in `last_penalty` for logging.
"""

from __future__ import annotations

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import Method
from mtlens.methods.options import Real
from mtlens.methods.registry import METHODS


def cosine_penalty(grads: list[torch.Tensor]) -> torch.Tensor:
    """Returns sum_{i<j} cos^2(g_i, g_j) for flat gradients (differentiable; zero vectors contribute 0)."""
    stacked = torch.stack(grads)
    norms = stacked.norm(dim=1)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    unit = stacked / safe.unsqueeze(1)
    cos = unit @ unit.T
    return torch.triu(cos * cos, diagonal=1).sum()


@METHODS.register("cosreg", aliases=("cos_reg", "orthogonal_gradients"))
class CosReg(Method):
    """Adds lambda * sum of squared pairwise cosines of the task gradients to the summed loss."""

    name = "cosreg"
    levels = ("param",)
    level_reason = "its penalty is on the angles between the shared parameters' gradients"
    option_rules = {"weight": Real(0.0)}
    weight: float

    def __init__(self, n_tasks: int | None = None, level: str = "param", weight: float = 1.0) -> None:
        super().__init__(n_tasks, level, weight=weight)
        self.last_penalty = 0.0

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        if not shared:
            raise MtlensError("cosreg: no shared parameters require grad; pass model.shared_parameters()")
        total = losses.sum()
        if len(losses) > 1 and self.weight > 0:
            grads = []
            for t in range(len(losses)):
                parts = torch.autograd.grad(losses[t], shared, retain_graph=True, create_graph=True, allow_unused=True)
                grads.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(parts, shared)]))
            bad = [t for t, g in enumerate(grads) if not bool(torch.isfinite(g).all())]
            if bad:
                raise MtlensError(f"cosreg: the gradient of task {bad[0]} contains NaN or inf; check that task's loss")
            penalty = cosine_penalty(grads)
            self.last_penalty = float(penalty.detach())
            total = total + self.weight * penalty
        total.backward()
        return torch.ones(len(losses))
