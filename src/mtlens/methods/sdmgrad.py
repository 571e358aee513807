"""SDMGrad (Xiao, Ban & Ji 2023, "Direction-oriented Multi-objective Learning: Simple and Provable Stochastic
Algorithms", Algorithm 1) and MoDo (Chen, Fernando, Ying & Chen 2023, "Three-Way Trade-Off in Multi-Objective
Learning: Optimization, Generalization and Conflict-Avoidance", eq. 2.9): task weights on the simplex, moved
by projected gradient steps from one call to the next (so n_tasks is fixed), then applied to the gradients.

SDMGrad: with A = G / s^2 (s the mean task-gradient norm, the authors' scale normalisation, their §6.1) and w~
the preference (default uniform, the direction of the mean gradient), `n_iter` projected steps with momentum

    v <- momentum v + A (w + lambda w~),   w <- Proj_simplex(w - lr v)       (v = 0 at every call)

from the previous call's w, and the update is sum_t (w_t + lambda w~_t) / (1 + lambda) g_t. Defaults: the
authors' code as TorchJD 0.18 reports it: lr = 10, momentum = 0.5, n_iter = 20, lambda = 0.3 (their
experiments' value; LibMTL uses the same but lr = 5). TorchJD divides by s^2 + 1e-8; we divide by s^2
(s > 0; a zero matrix leaves w unchanged), which differs only for gradients with norms near 1e-4.

MoDo: lambda <- Proj_simplex(lambda - gamma (G lambda + rho lambda)), starting uniform; update sum_t lambda_t g_t.
Defaults: gamma = 1e-3, rho = 0.1 (LibMTL's, from the authors' code; TorchJD 0.18 uses gamma = 0.1).

Both papers estimate G from independent batches (SDMGrad: A = J_1 J_2^T from two draws, and the update from
a third; MoDo likewise) so that the stochastic weights are unbiased. The method contract gives one batch per
step, so here G = J J^T and the update uses the same J, the deterministic form of both algorithms (TorchJD's
weightings take whatever matrix they are given; they agree with ours on G = J J^T).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import GramAggregator
from mtlens.methods._qp import project_simplex
from mtlens.methods.options import Integer, PerTask, Real
from mtlens.methods.registry import METHODS

_CLAIMS = frozenset({"permutation_invariant", "finite_on_zero", "finite_on_rank1", "levels_agree"})


@METHODS.register("sdmgrad", aliases=("sdm_grad",))
class SDMGrad(GramAggregator):
    """Simplex weights near the preference direction, refined by projected momentum steps every call."""

    name = "sdmgrad"
    per_task_state = True
    state_keys = ("simplex_weights",)
    claims = _CLAIMS | {"scale_equivariant"}
    exemptions = {
        "non_conflicting": "the weights trade conflict-avoidance against the preference direction (lambda > 0)",
        "scale_invariant": "the weights do not depend on the scale, so the update scales with the gradients",
    }
    option_rules = {"lr": Real(0.0, low_open=True), "momentum": Real(0.0, 1.0, high_open=True),
                    "n_iter": Integer(1), "lambda_": Real(0.0), "preference": PerTask(0.0, optional=True)}
    lr: float
    momentum: float
    n_iter: int
    lambda_: float
    preference: torch.Tensor | None

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        lr: float = 10.0,
        momentum: float = 0.5,
        n_iter: int = 20,
        lambda_: float = 0.3,
        preference: Sequence[float] | None = None,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, lr=lr, momentum=momentum, n_iter=n_iter,
                         lambda_=lambda_, preference=preference)
        #: w, the simplex weights carried from call to call (float64, CPU).
        self.simplex_weights = torch.full((self.n_tasks,), 1.0 / self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type,operator]

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        n = g.shape[0]
        target = np.full(n, 1.0 / n) if self.preference is None else self.preference.numpy()
        w = self.simplex_weights.numpy().copy()
        mean_norm = float(g.diagonal().clamp_min(0).sqrt().mean())
        if mean_norm > 0:
            a = (g / (mean_norm * mean_norm)).numpy()
            velocity = np.zeros(n)
            for _ in range(self.n_iter):
                velocity = self.momentum * velocity + a @ (w + self.lambda_ * target)
                w = project_simplex(w - self.lr * velocity)
        self.simplex_weights = torch.from_numpy(w)
        return torch.from_numpy((w + self.lambda_ * target) / (1.0 + self.lambda_))


@METHODS.register("modo")
class MoDo(GramAggregator):
    """Simplex weights moved by one projected step on lambda^T G lambda / 2 + rho |lambda|^2 / 2 per call."""

    name = "modo"
    per_task_state = True
    state_keys = ("simplex_weights",)
    claims = _CLAIMS
    exemptions = {
        "non_conflicting": "one projected step per call approaches the min-norm weights only over many calls",
        "scale_equivariant": "the step gamma G lambda is not normalised: the weights depend on the gradients' scale",
        "scale_invariant": "the step gamma G lambda is not normalised: the weights depend on the gradients' scale",
    }
    option_rules = {"gamma": Real(0.0, low_open=True), "rho": Real(0.0)}
    gamma: float
    rho: float

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        gamma: float = 1e-3,
        rho: float = 0.1,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, gamma=gamma, rho=rho)
        #: lambda, the simplex weights carried from call to call (float64, CPU).
        self.simplex_weights = torch.full((self.n_tasks,), 1.0 / self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type,operator]

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        lam = self.simplex_weights.numpy()
        step = (g.numpy() * (scale * scale)) @ lam  # the step uses the raw Gram matrix
        if not np.all(np.isfinite(step)):
            raise MtlensError(f"modo: the weight step overflows (gradients of norm ~{scale:.3g}); scale the losses down")
        lam = project_simplex(lam - self.gamma * (step + self.rho * lam))
        self.simplex_weights = torch.from_numpy(lam)
        return self.simplex_weights.clone()
