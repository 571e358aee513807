"""Equal weighting, the baseline (seed 004 eq. 4): the plain sum of the task losses."""

from __future__ import annotations

import torch

from mtlens.methods.base import LossWeighting
from mtlens.methods.registry import METHODS


@METHODS.register("ew", aliases=("equal", "equal_weighting", "sum"))
class EqualWeighting(LossWeighting):
    """Every task weighs 1: the update is the gradient of sum_i L_i."""

    name = "ew"

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns ones [T]."""
        return torch.ones_like(losses)
