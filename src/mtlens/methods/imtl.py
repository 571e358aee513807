"""IMTL (Liu et al. 2021, ICLR, "Towards Impartial Multi-task Learning"): IMTL-G, and the hybrid IMTL.

IMTL-G (§3.3): the update g = sum_t alpha_t g_t, sum alpha = 1, has equal projections onto every task
gradient's unit vector: <g, g_t / |g_t|> is the same for all t. The paper's closed form
alpha_{2:T} = g_1 U^T (D U^T)^{-1} (D rows g_1 - g_t, U rows u_1 - u_t) is, equivalently, alpha proportional
to G^+ n with G the Gram matrix and n_t = |g_t| (from (G alpha)_t = c |g_t|), normalised to sum 1. The
pseudo-inverse (TorchJD 0.18's generalisation) gives linearly dependent or zero gradients a defined answer
(a zero gradient gets weight 0); when the weights sum to 0 no such update exists and the update is zero.
Weights may be negative, as in the paper. LibMTL 1.1.5 uses the paper's closed form (an inverse).

IMTL (the paper's hybrid, Algorithm 1): IMTL-L scales the losses, L_t' = e^{s_t} L_t - s_t with learnable s
(`mtlens.methods.imtl_l.IMTLL`), the task heads and s get the gradient of sum_t L_t', and the shared part gets
IMTL-G applied to the gradients of the scaled losses. The weights reported are those on the raw losses'
gradients, alpha_t e^{s_t}. Give `parameters()` (the s) to the optimiser.
"""

from __future__ import annotations

from typing import Any

import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import GramAggregator
from mtlens.methods.options import Device
from mtlens.methods.registry import METHODS


def imtl_g_weights(g: torch.Tensor, where: str = "imtl_g") -> torch.Tensor:
    """Returns alpha [T] (sum 1) giving equal projections onto the task gradients' unit vectors, or zeros."""
    norms = g.diagonal().clamp_min(0).sqrt()
    try:
        v = torch.linalg.pinv(g, hermitian=True) @ norms
    except torch.linalg.LinAlgError as err:
        raise MtlensError(
            f"{where}: the pseudo-inverse of the Gram matrix failed ({err}); check the task gradients"
        ) from err
    total = float(v.sum())
    if abs(total) <= 1e-12 * max(float(v.abs().sum()), 1e-300):
        return torch.zeros_like(v)
    return v / total


@METHODS.register("imtl_g", aliases=("imtlg", "imtl-g"))
class IMTLG(GramAggregator):
    """Combines the task gradients so the update projects equally onto each of them."""

    name = "imtl_g"
    claims = frozenset({
        "permutation_invariant", "scale_equivariant", "finite_on_zero", "finite_on_rank1", "levels_agree"
    })
    exemptions = {
        "non_conflicting": (
            "the weights may be negative (Liu et al. 2021), so the equal projections can all be negative"
        ),
        "scale_invariant": "the weights sum to 1: the update scales with the gradients",
    }

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        return imtl_g_weights(g, where=f"{self.name} (step {self.step})")  # scale-free weights


@METHODS.register("imtl", aliases=("imtl_hybrid",))
class IMTL(IMTLG):
    """IMTL-L loss scales for the heads and the scales, IMTL-G for the shared parameters."""

    name = "imtl"
    per_task_state = True
    option_rules = {"device": Device()}
    device: torch.device

    weighted = False  # its loss scales are learnt through its own backward, which a wrapper would bypass

    def __init__(
        self, n_tasks: int | None = None, level: str = "param", device: str | torch.device = "cpu",
        batched: bool = True, gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, device=device)
        from mtlens.methods.imtl_l import IMTLL  # the loss-scaling half lives with the loss weightings

        self.loss_scale = IMTLL(n_tasks, device=self.device)

    def parameters(self) -> list[torch.Tensor]:
        """Returns [s], IMTL-L's learnable log scales."""
        return self.loss_scale.parameters()

    def _move(self, device: torch.device) -> None:
        self.device = device
        self.loss_scale.to(device)

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        scaled = self.loss_scale.scaled_losses(losses)
        # s gets d(sum_t L_t')/ds_t = e^{s_t} L_t - 1; the engine only walks the scaling ops to reach s.
        torch.autograd.backward(scaled.sum(), inputs=self.loss_scale.parameters(), retain_graph=True)
        alpha = super()._backward(scaled, shared, representation, task_params)
        return alpha * self.loss_scale.weights(losses).cpu()

    def state_dict(self) -> dict[str, Any]:
        """Returns the step and IMTL-L's log scales."""
        state = super().state_dict()
        state["loss_scale"] = self.loss_scale.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict`."""
        super().load_state_dict(state)
        self.loss_scale.load_state_dict(state["loss_scale"])
