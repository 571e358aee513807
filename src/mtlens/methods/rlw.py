"""Random loss weighting, RLW (Lin et al., TMLR 2022, "Reasonable Effectiveness of Random Weighting").

Each step draws lambda ~ N(0, I_T) and weighs the losses by softmax(lambda): positive weights summing to 1,
as in the paper's main variant (its Eq. with a standard normal and softmax normalisation). The samples come
from the method's own `torch.Generator` seeded with `seed`, so the same seed gives the same weights, and
the generator state is part of `state_dict()` so a resumed run draws the same sequence.

LibMTL 1.1.5 (`weighting/RLW.py`, dist='Normal') draws the same softmax(N(0, I)) weights from the global
torch generator; with the global seed set equal to ours the two give identical weights.
"""

from __future__ import annotations

import torch

from mtlens.methods.base import LossWeighting, Seeded
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import require_finite


@METHODS.register("rlw", aliases=("random", "random_weighting"))
class RLW(Seeded, LossWeighting):
    """Weights softmax(lambda), lambda ~ N(0, I) drawn anew each step from a seeded generator."""

    name = "rlw"

    def __init__(self, n_tasks: int | None = None, level: str = "param", seed: int = 0) -> None:
        super().__init__(n_tasks, level, seed=seed)
        self._init_rng()

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns a fresh draw softmax(lambda) [T] on the losses' device (advances the generator)."""
        require_finite(losses, self.name)
        lam = torch.randn(len(losses), generator=self.generator)
        return torch.softmax(lam, dim=0).to(losses.device)
