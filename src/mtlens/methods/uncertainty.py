"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018, "Multi-Task Learning Using Uncertainty to Weigh
Losses for Scene Geometry and Semantics", Eqs. 7 and 10).

With s_t = log sigma_t^2 learnable (the paper's numerically stable parametrisation, §3.2), the loss is

    sum_t 0.5 exp(-s_t) L_t + 0.5 s_t,

the paper's Gaussian (regression) form 1/(2 sigma^2) L + log sigma for every task. The paper's classification
form, 1/sigma^2 L + log sigma, differs by a factor 2 on the loss term; we use the regression form for every
task, as LibMTL 1.1.5 (`weighting/UW.py`) and most MTL benchmarks do. Reported weights are 0.5 exp(-s_t).

Initial s: the paper does not state it; default 0 (sigma = 1). LibMTL initialises s = -0.5; pass
`init_log_var=-0.5` to match it (the tests do, and then equal LibMTL exactly). `parameters()` returns [s]
for the optimiser.
"""

from __future__ import annotations

import torch

from mtlens.methods.options import Real
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import LearnableWeighting, require_finite


@METHODS.register("uncertainty", aliases=("uw", "uncertainty_weighting"))
class UncertaintyWeighting(LearnableWeighting):
    """Loss sum_t 0.5 exp(-s_t) L_t + 0.5 s_t with learnable log-variances s."""

    name = "uncertainty"
    state_keys = ("log_var",)
    option_rules = {"init_log_var": Real()}
    init_log_var: float

    def __init__(
        self, n_tasks: int | None = None, level: str = "param", init_log_var: float = 0.0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(n_tasks, level, init_log_var=init_log_var, device=device)
        #: s_t = log sigma_t^2.
        self.log_var = self._learnable(torch.full((self.n_tasks,), self.init_log_var))  # type: ignore[arg-type]

    def parameters(self) -> list[torch.Tensor]:
        """Returns [s], the learnable log-variances."""
        return [self.log_var]

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the current weights 0.5 exp(-s_t) [T] (detached)."""
        return 0.5 * torch.exp(-self.log_var.detach())

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (sum_t 0.5 exp(-s_t) L_t + 0.5 s_t, the weights 0.5 exp(-s_t))."""
        require_finite(losses, self.name)
        self._check_device(losses)
        s = self.log_var.to(losses.dtype)
        total = (0.5 * torch.exp(-s) * losses + 0.5 * s).sum()
        return total, self.weights(losses)
