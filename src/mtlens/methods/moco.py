"""MoCo, multi-objective gradient correction (Fernando, Shen, Liu, Chaudhury, Murugesan & Chen, ICLR 2023,
"Mitigating Gradient Bias in Multi-objective Learning: A Provably Convergent Approach", Algorithm 1).

Stochastic MGDA is biased because the min-norm weights are a non-linear function of noisy gradients. MoCo
tracks each task's gradient with a running estimate y_t and takes the weights from the estimates:

    y_t <- y_t - beta_k (y_t - g~_t),                  beta_k = beta / k^beta_sigma
    lambda <- Proj_simplex(lambda - gamma_k (Y Y^T + rho I) lambda),   gamma_k = gamma / k^gamma_sigma
    update = sum_t lambda_t y_t

(k the call number from 1, y = 0 and lambda = 1/T at the start). As in the authors' code (shared with LibMTL,
`weighting/MoCo.py`), each gradient is first normalised and scaled by its loss, g~_t = L_t g_t / |g_t| (a zero
gradient stays zero; LibMTL divides by |g_t| + 1e-8). Defaults: the authors' code as LibMTL gives them:
beta = 0.5, beta_sigma = 0.5, gamma = 0.1, gamma_sigma = 0.5, rho = 0. LibMTL updates lambda by a softmax of
the step instead of the paper's projection: `weight_update="softmax"` reproduces it.

Level: "param" only (LibMTL refuses representation gradients too): the y_t are averaged across steps, and
gradients w.r.t. the representation belong to each step's own samples. The update is built from the tracked
y_t, not from this step's gradients, so it is no weighting of them (CR-MOGM cannot wrap it).
"""

from __future__ import annotations

import numpy as np
import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import compute_dtype
from mtlens.methods._qp import project_simplex
from mtlens.methods._tracking import PER_SAMPLE_REASON, TrackingAggregator
from mtlens.methods.options import Choice, Real
from mtlens.methods.registry import METHODS


@METHODS.register("moco")
class MoCo(TrackingAggregator):
    """Min-norm-style weights on tracked (running-average) task gradients."""

    name = "moco"
    levels = ("param",)
    level_reason = "it averages gradients across steps, and " + PER_SAMPLE_REASON
    buffer_keys = ("tracked",)
    state_keys = ("tracked", "simplex_weights", "calls")
    claims = frozenset({"permutation_invariant", "scale_invariant", "finite_on_zero", "finite_on_rank1"})
    exemptions = {
        "non_conflicting": "the update follows the tracked gradients, which lag this step's",
        "scale_equivariant": "each gradient is normalised and scaled by its loss: the update ignores its norm",
        "levels_agree": f"defined at level 'param' only: {PER_SAMPLE_REASON}",
    }
    option_rules = {"beta": Real(0.0, 1.0), "beta_sigma": Real(0.0), "gamma": Real(0.0, low_open=True),
                    "gamma_sigma": Real(0.0), "rho": Real(0.0), "weight_update": Choice(("projection", "softmax"))}
    beta: float
    beta_sigma: float
    gamma: float
    gamma_sigma: float
    rho: float
    weight_update: str

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        beta: float = 0.5,
        beta_sigma: float = 0.5,
        gamma: float = 0.1,
        gamma_sigma: float = 0.5,
        rho: float = 0.0,
        weight_update: str = "projection",
        batched: bool = True,
    ) -> None:
        super().__init__(n_tasks, level, batched, beta=beta, beta_sigma=beta_sigma, gamma=gamma,
                         gamma_sigma=gamma_sigma, rho=rho, weight_update=weight_update)
        #: y, the tracked task gradients [T, P] (None until the first call).
        self.tracked: torch.Tensor | None = None
        self.simplex_weights = torch.full((self.n_tasks,), 1.0 / self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type,operator]
        self.calls = 0

    def _aggregate(self, jacobian, losses):  # type: ignore[no-untyped-def]
        if losses is None:
            raise MtlensError("moco: aggregate needs the task losses (each unit gradient is scaled by its loss)")
        work = jacobian.to(compute_dtype(jacobian))
        peak = work.abs().amax(dim=1, keepdim=True)  # normalise in two steps: |g| itself may overflow
        peak = torch.where(peak > 0, peak, torch.ones_like(peak))
        unit = work / peak
        norms = unit.norm(dim=1, keepdim=True)
        unit = torch.where(norms > 0, unit / torch.where(norms > 0, norms, torch.ones_like(norms)), 0.0)
        target = unit * losses.to(unit).unsqueeze(1)
        self.calls += 1
        tracked = self._buffer("tracked", target)
        tracked = tracked - (self.beta / self.calls**self.beta_sigma) * (tracked - target)
        self.tracked = tracked
        gram = (tracked @ tracked.T).to(device="cpu", dtype=torch.float64).numpy()
        lam = self.simplex_weights.numpy()
        step = lam - (self.gamma / self.calls**self.gamma_sigma) * ((gram + self.rho * np.eye(len(lam))) @ lam)
        if self.weight_update == "projection":
            lam = project_simplex(step)
        else:
            lam = np.exp(step - step.max())
            lam = lam / lam.sum()
        self.simplex_weights = torch.from_numpy(lam)
        return self.simplex_weights.to(tracked) @ tracked, self.simplex_weights.clone()
