"""FAMO (Liu, Feng, Stone & Liu, NeurIPS 2023, "FAMO: Fast Adaptive Multitask Optimization", Algorithm 1).

Task logits xi (initialised 0), z = softmax(xi). The step backpropagates

    sum_t z_t log(L_t - Lmin_t + eps) / c,   c = sum_t z_t / (L_t - Lmin_t + eps)  (c held constant),

i.e. the gradient sum_t [z_t / (c (L_t - Lmin_t + eps))] grad L_t, whose weights (reported) sum to 1. After
the optimiser step, the losses of the same batch are computed again without gradients (`after_step`, the
life cycle of `mtlens.methods.base`): with delta_t = log(L_t - Lmin_t + eps) - log(L'_t - Lmin_t + eps), the logits take one
Adam step (lr `w_lr`, L2 weight decay `gamma`) along the gradient J_softmax(xi)^T delta.
The paper writes this update as plain gradient descent with decay gamma; we follow the official code (Adam).

Defaults, from the official code (github.com/Cranial-XIX/FAMO, `methods/weight_methods.py` and
`experiments/utils.py`): w_lr 0.025, gamma 0.01 (its command-line default; the class default there is 1e-5),
min losses 0, eps 1e-8. The official code also has max_norm=1.0, but calls `clip_grad_norm_` before
`loss.backward()`, so the published runs did not clip; we do not clip (clip in the Trainer if wanted).

In a loop: ``method.backward(losses, ...); optimizer.step(); method.after_step(lambda: <the same batch's
[T] losses>)``; the callable runs under no_grad.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import LossWeighting
from mtlens.methods.options import Device, PerTask, Real
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import require_finite

_EPS = 1e-8  # the official code's offset inside the logarithms


@METHODS.register("famo")
class FAMO(LossWeighting):
    """Fast adaptive multitask optimisation: log-loss weighting by softmax logits updated after each step."""

    name = "famo"
    per_task_state = True
    state_keys = ("logits", "min_losses", "prev_losses")
    option_rules = {"w_lr": Real(0.0, low_open=True), "gamma": Real(0.0), "min_losses": PerTask(optional=True),
                    "device": Device()}
    w_lr: float
    gamma: float
    device: torch.device

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        w_lr: float = 0.025,
        gamma: float = 0.01,
        min_losses: torch.Tensor | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(n_tasks, level, w_lr=w_lr, gamma=gamma, min_losses=min_losses, device=device)
        n_tasks = self.n_tasks
        self.logits = torch.zeros(n_tasks, device=self.device, requires_grad=True)  # type: ignore[arg-type]
        given = self.options["min_losses"]
        floor = torch.zeros(n_tasks) if given is None else given.float()  # type: ignore[arg-type]
        self.min_losses = floor.to(self.device)
        #: The losses of the last `backward`, before the parameter step (NaN until the first step).
        self.prev_losses = torch.full((n_tasks,), float("nan"), device=self.device)  # type: ignore[arg-type]
        self.logit_optimizer = torch.optim.Adam([self.logits], lr=self.w_lr, weight_decay=self.gamma)

    def _move(self, device: torch.device) -> None:
        self.device = device
        self.logits.data = self.logits.data.to(device)  # in place: the logit optimiser keeps the same tensor
        self.min_losses = self.min_losses.to(device)
        self.prev_losses = self.prev_losses.to(device)
        for state in self.logit_optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.ndim > 0:
                    state[key] = value.to(device)

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
            raise MtlensError(f"famo: after_step() expected {self.n_tasks} task losses, got shape {tuple(new.shape)}")
        if bool(torch.isnan(self.prev_losses).any()):
            raise MtlensError("famo: after_step() called before backward(); call it after each optimiser step")
        delta = self._gaps(self.prev_losses).log() - self._gaps(new).log()
        z = torch.softmax(self.logits.detach(), 0)
        # Jacobian of softmax is diag(z) - z z^T (symmetric), so J^T delta = z * (delta - <z, delta>).
        return z * (delta - (z * delta).sum())

    def after_step(self, losses_after: Callable[[], torch.Tensor]) -> None:
        """Moves the logits one Adam step using the same batch's losses after the parameter step."""
        if not callable(losses_after):
            raise MtlensError(
                "famo: after_step takes a callable returning the batch's losses after the step, e.g. "
                "lambda: model.step_losses(batch)[0]"
            )
        with torch.no_grad():
            new_losses = losses_after()
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
