"""The method contract: one object per MTL optimisation method, called once per step from any loop.

`method.backward(losses, shared_params, representation, task_params)` writes `.grad` of the parameters and
returns the task weights it used (for logging). Loss-weighting methods implement `weights(losses)`; gradient
methods implement `aggregate(jacobian, losses)` (T x P in, P out). Gradient methods run at two levels:
"param" (per-task gradients w.r.t. the shared parameters) or "feature" (w.r.t. the shared representation,
the fast surrogate of seed 004 §2.4, as in MGDA-UB); the aggregated feature gradient is then backpropagated
once through the encoder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch

from mtlens.errors import MtlensError
from mtlens.methods.gradients import task_jacobian, vjp_rows, write_grad

LEVELS = ("param", "feature")


def check_losses(losses: torch.Tensor | Sequence[torch.Tensor], n_tasks: int, name: str) -> torch.Tensor:
    """Returns the losses stacked into a [T] tensor, or raises if their number, shape or devices are wrong."""
    if not isinstance(losses, torch.Tensor):
        losses = list(losses)
        devices = {l.device for l in losses}
        if len(devices) > 1:
            raise MtlensError(f"{name}: the task losses are on different devices ({sorted(map(str, devices))}); move them to one")
        losses = torch.stack([l.reshape(()) for l in losses])
    if losses.ndim != 1 or losses.shape[0] != n_tasks:
        raise MtlensError(f"{name}: expected {n_tasks} task losses (a [T] tensor), got shape {tuple(losses.shape)}")
    return losses


class Method(ABC):
    """Base of every MTL method. Subclasses set `name` and implement `_backward`."""

    name: ClassVar[str] = ""
    #: True when the method needs per-task gradients.
    uses_gradients: ClassVar[bool] = False
    #: Levels at which the method is defined; a method that needs parameter gradients by definition says so.
    levels: ClassVar[tuple[str, ...]] = LEVELS

    def __init__(self, n_tasks: int, level: str = "param") -> None:
        if n_tasks < 1:
            raise MtlensError(f"{self.name}: n_tasks must be >= 1, got {n_tasks}")
        if level not in LEVELS:
            raise MtlensError(f"{self.name}: unknown level {level!r}; choose 'param' or 'feature'")
        if level not in self.levels:
            raise MtlensError(f"{self.name} is defined on parameter gradients only; use level='param'")
        self.n_tasks = n_tasks
        self.level = level
        self.step = 0

    # ------------------------------------------------------------------ the one-line call
    def backward(
        self,
        losses: torch.Tensor | Sequence[torch.Tensor],
        shared_params: Iterable[torch.Tensor],
        representation: torch.Tensor | None = None,
        task_params: Iterable[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Writes `.grad` of the shared (and task) parameters for this step; returns the [T] task weights used."""
        losses = check_losses(losses, self.n_tasks, self.name)
        shared = [p for p in shared_params if p.requires_grad]
        tasks = None if task_params is None else [p for p in task_params if p.requires_grad]
        if self.uses_gradients and self.level == "feature" and representation is None:
            raise MtlensError(f"{self.name}: level='feature' needs the shared representation tensor; pass representation=z")
        weights = self._backward(losses, shared, representation, tasks)
        self.step += 1
        return weights.detach()

    @abstractmethod
    def _backward(
        self,
        losses: torch.Tensor,
        shared: list[torch.Tensor],
        representation: torch.Tensor | None,
        task_params: list[torch.Tensor] | None,
    ) -> torch.Tensor:
        """Writes the gradients; returns the task weights."""

    def parameters(self) -> list[torch.Tensor]:
        """Returns the method's own learnable parameters (e.g. uncertainty log-variances) for the optimiser."""
        return []

    # ------------------------------------------------------------------ state, like torch.optim
    #: Names of attributes that make up the method's state (tensors, numbers, lists).
    state_keys: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        """Returns the method's state (step and `state_keys`), so runs resume exactly."""
        state = {"step": self.step}
        for key in self.state_keys:
            value = getattr(self, key)
            state[key] = value.detach().clone() if isinstance(value, torch.Tensor) else value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict`."""
        self.step = int(state["step"])
        for key in self.state_keys:
            current = getattr(self, key)
            value = state[key]
            if isinstance(current, torch.Tensor) and isinstance(value, torch.Tensor):
                with torch.no_grad():
                    current.copy_(value)
            else:
                setattr(self, key, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_tasks={self.n_tasks}, level={self.level!r})"


class LossWeighting(Method):
    """A method that weights the losses: the step is `backward(sum_i w_i L_i)` through all parameters."""

    @abstractmethod
    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the [T] weights for this step's (detached) losses."""

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (the scalar to backpropagate, the weights); methods with learnable weights override it."""
        w = self.weights(losses.detach()).to(losses)
        return (w.detach() * losses).sum(), w

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        total, w = self.weighted_loss(losses)
        total.backward()
        return w


class GradientAggregator(Method):
    """A method that combines the per-task gradients [T, P] into one update direction [P]."""

    uses_gradients = True

    def __init__(self, n_tasks: int, level: str = "param", batched: bool = True) -> None:
        super().__init__(n_tasks, level)
        #: True (default): the T rows of a Jacobian come from one vmap'd backward (autograd's is_grads_batched),
        #: falling back to a loop where an op has no batching rule; False: T backward passes. On 2 CPU cores
        #: the loop is ~8% faster for the encoder rows (PCGrad, conv encoder, 10 tasks, batch 64: 0.44 s vs
        #: 0.48 s per step, both ~6x equal weighting); on a GPU the batched pass is the one to have.
        self.batched = batched
        #: The weights of the last step: the combination coefficients where the method has them.
        self.last_weights = torch.ones(n_tasks)

    @abstractmethod
    def aggregate(self, jacobian: torch.Tensor, losses: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the update direction [P] for the per-task gradients [T, P] (sets `last_weights`)."""

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        if task_params is None:
            raise MtlensError(
                f"{self.name}: pass task_params (e.g. model.task_parameters()) so the heads get their gradients"
            )
        # Task-specific parameters get each their own task's gradient: sum of the losses, no weighting.
        if task_params:
            torch.autograd.backward(losses.sum(), inputs=task_params, retain_graph=True)
        if self.level == "feature":
            jac_z = task_jacobian(losses, [representation], batched=self.batched)
            direction = self.aggregate(jac_z, losses.detach())
            torch.autograd.backward(representation, direction.view_as(representation), inputs=shared)
        elif representation is not None:
            # Chain through the representation: T cheap VJPs through the heads, then T batched VJPs
            # through the encoder (the bound of one forward plus T backward passes).
            jac_z = task_jacobian(losses, [representation], batched=self.batched)
            cot = jac_z.view(self.n_tasks, *representation.shape)
            jac = vjp_rows(representation, shared, cot, batched=self.batched)
            write_grad(shared, self.aggregate(jac, losses.detach()))
        else:
            jac = task_jacobian(losses, shared, batched=self.batched)
            write_grad(shared, self.aggregate(jac, losses.detach()))
        return self.last_weights
