"""Shared pieces of the gradient-aggregation methods: input checks, the one-task rule, seeded randomness.

Every aggregator here derives from `Aggregator`, whose `aggregate(jacobian, losses)` checks the Jacobian
(shape, NaN/inf naming the task), returns a lone task's own gradient unchanged (with one task there is
nothing to combine, so every method is the identity), and otherwise calls the method's `_aggregate`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import GradientAggregator


def check_jacobian(jacobian: torch.Tensor, n_tasks: int, name: str) -> torch.Tensor:
    """Returns `jacobian` unchanged, or raises naming the problem (wrong shape, NaN/inf in a task's row)."""
    if not isinstance(jacobian, torch.Tensor) or jacobian.ndim != 2 or jacobian.shape[0] != n_tasks:
        shape = tuple(jacobian.shape) if isinstance(jacobian, torch.Tensor) else type(jacobian).__name__
        raise MtlensError(f"{name}: expected a [{n_tasks}, P] matrix of per-task gradients, got {shape}")
    bad = ~torch.isfinite(jacobian).all(dim=1)
    if bool(bad.any()):
        t = int(bad.nonzero()[0, 0])
        raise MtlensError(
            f"{name}: the gradient of task {t} contains NaN or inf; check that task's loss and targets"
        )
    return jacobian


def gram(jacobian: torch.Tensor) -> torch.Tensor:
    """Returns the [T, T] Gram matrix J J^T of the task gradients in float64 on the CPU.

    The product runs in the Jacobian's dtype and device (the expensive part); the small solvers that follow
    run in float64 so that their tolerances mean the same for every input scale.
    """
    return (jacobian @ jacobian.T).to(device="cpu", dtype=torch.float64)


def combine(weights: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """Returns sum_t weights[t] * jacobian[t] in the Jacobian's dtype and device."""
    return weights.to(device=jacobian.device, dtype=jacobian.dtype) @ jacobian


class Aggregator(GradientAggregator):
    """A gradient aggregator with the common checks; subclasses implement `_aggregate`."""

    def aggregate(self, jacobian: torch.Tensor, losses: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the update direction [P] for the per-task gradients [T, P] (sets `last_weights`)."""
        check_jacobian(jacobian, self.n_tasks, self.name)
        if self.n_tasks == 1:
            self.last_weights = torch.ones(1)
            return jacobian[0].clone()
        direction, weights = self._aggregate(jacobian, None if losses is None else losses.detach())
        self.last_weights = weights.detach().to(device="cpu", dtype=torch.float32)
        return direction

    @abstractmethod
    def _aggregate(self, jacobian: torch.Tensor, losses: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (the direction [P], the [T] task weights to report) for T >= 2 checked task gradients."""


class Seeded:
    """Mixin: a private `torch.Generator` seeded by `seed`, saved in `state_dict()` so runs resume exactly.

    The generator lives on the CPU: the random choices concern T tasks, never P parameters.
    """

    def _init_rng(self, seed: int) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise MtlensError(f"{getattr(self, 'name', 'method')}: seed must be an int, got {seed!r}")
        self.seed = seed
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)

    def state_dict(self) -> dict[str, Any]:
        """Returns the method's state including the generator state."""
        state = super().state_dict()  # type: ignore[misc]
        state["rng_state"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict`, generator included."""
        super().load_state_dict(state)  # type: ignore[misc]
        self.generator.set_state(state["rng_state"])
