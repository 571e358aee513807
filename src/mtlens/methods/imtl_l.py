"""IMTL-L (Liu et al., ICLR 2021, "Towards Impartial Multi-task Learning", §3.2): learnable loss scales.

Each task t has a learnable s_t (initialised 0); the method minimises sum_t (e^{s_t} L_t - s_t) over the
model parameters and s jointly. At the optimum in s, e^{s_t} = 1 / L_t, so every scaled loss is driven
towards 1: the scale is impartial to the raw loss magnitudes. The s_t are returned by `parameters()` and
updated by the same optimiser as the model (the paper updates them with the task-specific parameters).

Reuse (the hybrid IMTL of the gradient methods): `IMTLL(T).scaled_losses(losses)` returns the [T] tensor
e^{s_t} L_t - s_t with its graph to s and to the losses; backpropagating any combination of it gives s
its gradient. LibMTL 1.1.5 (`weighting/IMTL.py`) scales the losses the same way, with s = 0 initially.
"""

from __future__ import annotations

import torch

from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import LearnableWeighting, require_finite


@METHODS.register("imtl_l", aliases=("imtl-l", "imtll"))
class IMTLL(LearnableWeighting):
    """Loss e^{s_t} L_t - s_t per task; the weights it reports are e^{s_t}."""

    name = "imtl_l"
    state_keys = ("log_scale",)

    def __init__(self, n_tasks: int | None = None, level: str = "param", device: str | torch.device = "cpu") -> None:
        super().__init__(n_tasks, level, device=device)
        #: s_t, the log of each task's loss scale.
        self.log_scale = self._learnable(torch.zeros(self.n_tasks))  # type: ignore[arg-type]

    def parameters(self) -> list[torch.Tensor]:
        """Returns [s], the learnable log scales."""
        return [self.log_scale]

    def scaled_losses(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the [T] scaled losses e^{s_t} L_t - s_t (differentiable in s and in the losses)."""
        require_finite(losses, self.name)
        self._check_device(losses)
        s = self.log_scale
        return s.exp().to(losses.dtype) * losses - s.to(losses.dtype)

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the current scales e^{s_t} [T] (detached)."""
        return self.log_scale.detach().exp()

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (sum_t e^{s_t} L_t - s_t, the scales e^{s_t})."""
        return self.scaled_losses(losses).sum(), self.weights(losses)
