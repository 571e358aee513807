"""Shared pieces of the loss-weighting methods: finite-loss checks and learnable per-task tensors."""

from __future__ import annotations

from typing import Any

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import LossWeighting
from mtlens.methods.options import Device


def require_finite(losses: torch.Tensor, name: str) -> torch.Tensor:
    """Returns `losses` unchanged, or raises naming the first task whose loss is NaN or infinite."""
    bad = ~torch.isfinite(losses.detach())
    if bool(bad.any()):
        t = int(bad.nonzero()[0, 0])
        raise MtlensError(
            f"{name}: the loss of task {t} is {float(losses.detach()[t])}; check that task's targets and predictions"
        )
    return losses


class LearnableWeighting(LossWeighting):
    """A loss weighting with learnable per-task tensors: `parameters()` gives them to the optimiser.

    The tensors are leaves with requires_grad; `to(device)` moves them in place (same objects), so call it
    before building the optimiser, or create the method with `device=` ("auto" as `resolve_device`).
    """

    per_task_state = True
    option_rules = {"device": Device()}
    device: torch.device

    def __init__(self, n_tasks: int | None = None, level: str = "param", **options: Any) -> None:
        super().__init__(n_tasks, level, **options)

    def _learnable(self, values: torch.Tensor) -> torch.Tensor:
        """Returns a float32 leaf tensor on the method's device that requires grad."""
        return values.to(device=self.device, dtype=torch.float32).clone().requires_grad_(True)

    def _check_device(self, losses: torch.Tensor) -> None:
        # The parameters' own device is concrete ("cuda:0"), unlike a requested "cuda".
        where = self.parameters()[0].device if self.parameters() else self.device
        if losses.device != where:
            raise MtlensError(
                f"{self.name}: the losses are on {losses.device} but the method's parameters are on "
                f"{where}; create the method with device='{losses.device}' or call .to('{losses.device}')"
            )

    def _move(self, device: torch.device) -> None:
        self.device = device
        for p in self.parameters():
            p.data = p.data.to(device)
