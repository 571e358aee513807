"""Auto-Lambda (Liu, Davison & Johns, TMLR 2022, "Auto-Lambda: Disentangling Dynamic Task Relationships",
eqs. 3-5): task weights lambda learnt by a one-step look-ahead on validation losses.

The network trains on sum_t lambda_t L_t. Before each step, lambda moves along the gradient of the primary
tasks' validation loss after a virtual SGD step of the network,

    theta' = theta - a grad_theta sum_t lambda_t L_t^train(theta),
    grad_lambda L^val(theta') = -a grad^2_{lambda,theta} (sum_t lambda_t L_t^train) grad_theta' L^val(theta')
                              ~ -a (L^train(theta+) - L^train(theta-)) / (2 e),

the second-order term by a central finite difference at theta+- = theta +- e d, d = grad_theta' L^val(theta'),
e = 0.01 / |d| (the authors' DARTS-style approximation; d/dlambda_t of sum lambda L^train is L_t^train).
lambda then takes one Adam step (lr `lr`) with that gradient; the authors keep lambda in their own Adam too.

Defaults, from the authors' code (github.com/lorenmt/auto-lambda, trainer_dense.py / auto_lambda.py):
init = 0.1 (`--autol_init`), lr = 1e-4 (`--autol_lr`), every task primary (the multi-task setting). The
virtual step's learning rate a is the network optimiser's current one in their code; here it is the option
`virtual_lr` (default 1e-3, the Trainer's default learning rate: set it to yours), and the step is plain
gradient descent (their SGD's momentum and weight decay terms are zero for Adam). The parameters are moved in
place and restored exactly (copied back, not added back as in their code).

Contract: `needs_validation_batch` is True, so the Trainer calls `validation_step(val_losses, train_losses,
params)` before each step with a batch of its "val" split; in your own loop, call it before the forward pass
(see `mtlens.methods.base`). The authors' dense and CIFAR scripts draw the "validation" batch from a
re-shuffled copy of the training set in the multi-task setting: pass the training data as the val split to
reproduce that. The extra forward passes run in training mode, as in their code (BatchNorm statistics see
them). `parameters()` is empty: lambda has its own optimiser, as in the authors' code.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import LossWeighting
from mtlens.methods.options import Device, Real, TaskIndices
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import require_finite


@METHODS.register("auto_lambda", aliases=("autol", "auto-lambda"))
class AutoLambda(LossWeighting):
    """Task weights learnt by the meta-gradient of the validation loss through a virtual training step."""

    name = "auto_lambda"
    per_task_state = True
    needs_validation_batch = True
    state_keys = ("meta_weights",)
    option_rules = {"init": Real(), "lr": Real(0.0, low_open=True), "virtual_lr": Real(0.0, low_open=True),
                    "primary": TaskIndices(), "device": Device()}
    init: float
    lr: float
    virtual_lr: float
    primary: tuple[int, ...] | None
    device: torch.device

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        init: float = 0.1,
        lr: float = 1e-4,
        virtual_lr: float = 1e-3,
        primary: Sequence[int] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(n_tasks, level, init=init, lr=lr, virtual_lr=virtual_lr, primary=primary, device=device)
        n = self.n_tasks
        self.meta_weights = torch.full((n,), self.init, device=self.device, requires_grad=True)  # type: ignore[arg-type]
        self.meta_optimizer = torch.optim.Adam([self.meta_weights], lr=self.lr)
        mask = torch.zeros(n) if self.primary is not None else torch.ones(n)  # type: ignore[arg-type]
        if self.primary is not None:
            mask[list(self.primary)] = 1.0
        self.primary_mask = mask
        #: The last meta-gradient (for logging).
        self.last_meta_grad = torch.zeros(n)  # type: ignore[arg-type]

    def _move(self, device: torch.device) -> None:
        self.device = device
        self.meta_weights.data = self.meta_weights.data.to(device)  # in place: the optimiser keeps the tensor
        for state in self.meta_optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.ndim > 0:
                    state[key] = value.to(device)

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the current lambda [T] (detached)."""
        return self.meta_weights.detach().to(losses.device).clone()

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (sum_t lambda_t L_t, lambda)."""
        require_finite(losses, self.name)
        w = self.weights(losses).to(losses.dtype)
        return (w * losses).sum(), w

    def validation_step(
        self,
        val_losses: Callable[[], torch.Tensor],
        train_losses: Callable[[], torch.Tensor],
        params: Sequence[torch.Tensor],
    ) -> None:
        """Moves lambda one Adam step along the look-ahead meta-gradient; leaves `params` as they were."""
        params = [p for p in params if p.requires_grad]
        saved = [p.detach().clone() for p in params]
        weights = self.meta_weights.detach()
        try:
            train = self._checked(train_losses(), "training")
            grads = torch.autograd.grad((weights.to(train) * train).sum(), params, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    if g is not None:
                        p.sub_(self.virtual_lr * g)
            val = self._checked(val_losses(), "validation")
            target = (self.primary_mask.to(val) * val).sum()
            direction = torch.autograd.grad(target, params, allow_unused=True)
            direction = [torch.zeros_like(p) if d is None else d for p, d in zip(params, direction)]
            norm = math.sqrt(sum(float((d * d).sum()) for d in direction))
            meta_grad = torch.zeros_like(weights)
            if norm > 0 and math.isfinite(norm):
                step = 0.01 / norm
                with torch.no_grad():
                    ahead = self._losses_at(train_losses, params, saved, direction, step)
                    behind = self._losses_at(train_losses, params, saved, direction, -step)
                # d/dlambda sum_t lambda_t L_t^train = L^train, at theta + e d and theta - e d
                meta_grad = -self.virtual_lr * (ahead - behind).to(weights) / (2.0 * step)
        finally:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
        self.last_meta_grad = meta_grad.detach().cpu()
        self.meta_optimizer.zero_grad()
        self.meta_weights.grad = meta_grad
        self.meta_optimizer.step()

    def _losses_at(self, losses: Callable[[], torch.Tensor], params: list[torch.Tensor], saved: list[torch.Tensor],
                   direction: list[torch.Tensor], step: float) -> torch.Tensor:
        for p, s, d in zip(params, saved, direction):
            p.copy_(s + step * d)
        return self._checked(losses(), "training").detach()

    def _checked(self, losses: torch.Tensor, which: str) -> torch.Tensor:
        if not isinstance(losses, torch.Tensor) or losses.shape != (self.n_tasks,):
            shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
            raise MtlensError(f"auto_lambda: the {which} losses callable must return {self.n_tasks} task losses "
                              f"(a [{self.n_tasks}] tensor), got {shape}")
        return require_finite(losses, self.name)

    def state_dict(self) -> dict[str, Any]:
        """Returns the step, lambda and its Adam moments."""
        return {**super().state_dict(), "meta_optimizer": copy.deepcopy(self.meta_optimizer.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict`."""
        super().load_state_dict(state)
        self.meta_optimizer.load_state_dict(copy.deepcopy(state["meta_optimizer"]))
