"""Random loss weighting, RLW (Lin et al., TMLR 2022, "Reasonable Effectiveness of Random Weighting").

Each step draws lambda ~ N(0, I_T) and weighs the losses by softmax(lambda): positive weights summing to 1,
as in the paper's main variant (its Eq. with a standard normal and softmax normalisation). The samples come
from the method's own `torch.Generator` seeded with `seed`, so the same seed gives the same weights, and
the generator state is part of `state_dict()` so a resumed run draws the same sequence.

LibMTL 1.1.5 (`weighting/RLW.py`, dist='Normal') draws the same softmax(N(0, I)) weights from the global
torch generator; with the global seed set equal to ours the two give identical weights.
"""

from __future__ import annotations

from typing import Any

import torch

from mtlens.methods.base import LossWeighting
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import require_finite


@METHODS.register("rlw", aliases=("random", "random_weighting"))
class RLW(LossWeighting):
    """Weights softmax(lambda), lambda ~ N(0, I) drawn anew each step from a seeded generator."""

    name = "rlw"

    def __init__(self, n_tasks: int, level: str = "param", seed: int = 0) -> None:
        super().__init__(n_tasks, level)
        self.seed = int(seed)
        self.generator = torch.Generator(device="cpu").manual_seed(self.seed)

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns a fresh draw softmax(lambda) [T] on the losses' device (advances the generator)."""
        require_finite(losses, self.name)
        lam = torch.randn(self.n_tasks, generator=self.generator)
        return torch.softmax(lam, dim=0).to(losses.device)

    def state_dict(self) -> dict[str, Any]:
        """Returns the step, the seed and the generator state."""
        return {**super().state_dict(), "seed": self.seed, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state from `state_dict`, so the next draws continue the saved sequence."""
        super().load_state_dict(state)
        self.seed = int(state["seed"])
        self.generator.set_state(state["generator"])
