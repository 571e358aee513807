"""FAMO (Liu, Feng, Stone & Liu, NeurIPS 2023, "FAMO: Fast Adaptive Multitask Optimization", Algorithm 1).

Task logits xi (initialised 0), z = softmax(xi). The step backpropagates

    sum_t z_t log(L_t - Lmin_t + eps) / c,   c = sum_t z_t / (L_t - Lmin_t + eps)  (c held constant),

i.e. the gradient sum_t [z_t / (c (L_t - Lmin_t + eps))] grad L_t, whose weights (reported) sum to 1. After
the optimiser step, the losses of the same batch are computed again without gradients and passed to
`update(new_losses)`: with delta_t = log(L_t - Lmin_t + eps) - log(L'_t - Lmin_t + eps), the logits take one
Adam step (lr `w_lr`, L2 weight decay `gamma`) along the gradient J_softmax(xi)^T delta.
The paper writes this update as plain gradient descent with decay gamma; we follow the official code (Adam).

Defaults, from the official code (github.com/Cranial-XIX/FAMO, `methods/weight_methods.py` and
`experiments/utils.py`): w_lr 0.025, gamma 0.01 (its command-line default; the class default there is 1e-5),
min losses 0, eps 1e-8. The official code also has max_norm=1.0, but calls `clip_grad_norm_` before
`loss.backward()`, so the published runs did not clip; we do not clip (clip in the Trainer if wanted).

Trainer protocol (`needs_post_step_losses = True`):
    weights = method.backward(losses, ...); optimizer.step()
    with torch.no_grad(): method.update(<the same batch's task losses after the step>)
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import LossWeighting
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import require_finite

_EPS = 1e-8  # the official code's offset inside the logarithms


@METHODS.register("famo")
class FAMO(LossWeighting):
    """Fast adaptive multitask optimisation: log-loss weighting by softmax logits updated after each step."""

    name = "famo"
    needs_post_step_losses = True
    state_keys = ("logits", "min_losses", "prev_losses")

    def __init__(
        self,
        n_tasks: int,
        level: str = "param",
        w_lr: float = 0.025,
        gamma: float = 0.01,
        min_losses: torch.Tensor | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(n_tasks, level)
        if not w_lr > 0 or not gamma >= 0:
            raise MtlensError(f"famo: need w_lr > 0 and gamma >= 0, got w_lr={w_lr}, gamma={gamma}")
        self.device = torch.device(device)
        self.w_lr, self.gamma = float(w_lr), float(gamma)
        self.logits = torch.zeros(n_tasks, device=self.device, requires_grad=True)
        self.min_losses = torch.zeros(n_tasks, device=self.device)
        if min_losses is not None:
            self.min_losses = torch.as_tensor(min_losses, dtype=torch.float32, device=self.device).reshape(n_tasks)
        #: The losses of the last `backward`, before the parameter step (NaN until the first step).
        self.prev_losses = torch.full((n_tasks,), float("nan"), device=self.device)
        self.logit_optimizer = torch.optim.Adam([self.logits], lr=self.w_lr, weight_decay=self.gamma)

    def _gaps(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns L_t - Lmin_t + eps, or raises naming a task whose loss is not above its minimum."""
        require_finite(losses, self.name)
        gaps = losses - self.min_losses.to(losses) + _EPS
        bad = gaps.detach() <= 0
        if bool(bad.any()):
            t = int(bad.nonzero()[0, 0])
            raise MtlensError(
                f"famo: the loss of task {t} ({float(losses.detach()[t])}) is below its minimum "
                f"{float(self.min_losses[t])}; FAMO takes log(L - Lmin), so losses must be >= min_losses"
            )
        return gaps

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the effective weights z_t / (c (L_t - Lmin_t + eps)) [T], which sum to 1."""
        z = torch.softmax(self.logits.detach(), 0).to(losses)
        inv = z / self._gaps(losses.detach())
        return inv / inv.sum()

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (sum_t z_t log(L_t - Lmin_t + eps) / c, the effective weights) and remembers the losses."""
        gaps = self._gaps(losses)
        z = torch.softmax(self.logits.detach(), 0).to(losses)
        c = (z / gaps.detach()).sum()
        self.prev_losses = losses.detach().to(self.device, torch.float32).clone()
        return (z * gaps.log() / c).sum(), self.weights(losses)

    def logit_gradient(self, new_losses: torch.Tensor) -> torch.Tensor:
        """Returns J_softmax(xi)^T delta, delta_t = log(L_t - Lmin_t + eps) - log(L'_t - Lmin_t + eps)."""
        new = new_losses.detach().to(self.device, torch.float32).reshape(-1)
        if new.shape != (self.n_tasks,):
            raise MtlensError(f"famo: update() expected {self.n_tasks} task losses, got shape {tuple(new.shape)}")
        if bool(torch.isnan(self.prev_losses).any()):
            raise MtlensError("famo: update() called before backward(); call it after each optimiser step")
        delta = self._gaps(self.prev_losses).log() - self._gaps(new).log()
        z = torch.softmax(self.logits.detach(), 0)
        # Jacobian of softmax is diag(z) - z z^T (symmetric), so J^T delta = z * (delta - <z, delta>).
        return z * (delta - (z * delta).sum())

    def update(self, new_losses: torch.Tensor) -> None:
        """Moves the logits one Adam step using the same batch's losses after the parameter step."""
        grad = self.logit_gradient(new_losses)
        self.logit_optimizer.zero_grad()
        self.logits.grad = grad
        self.logit_optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        """Returns the step, the logits, min and previous losses, and the logit optimiser's state."""
        return {**super().state_dict(), "logit_optimizer": copy.deepcopy(self.logit_optimizer.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict` (the Adam moments included)."""
        super().load_state_dict(state)
        self.logit_optimizer.load_state_dict(copy.deepcopy(state["logit_optimizer"]))
