"""MTVIB (Qian et al. 2020, "Multi-task variational information bottleneck"), as seed 001 §V-A compares to it.

One stochastic shared representation Z ~ N(mu(x), diag e^{v(x)}) from mean and log-variance heads on the
encoder's trunk, a KL to N(0, I), uncertainty weighting of the task losses, and a head per task on Z. Sampled
(one draw, by reparameterisation) in training, the mean at evaluation -- as the seed's authors' code does.

    total = sum_j [exp(-w_j) CE_j + w_j / 2] + beta KL,  KL = 1/2 sum_i (e^{v_i} + mu_i^2 - 1 - v_i)

with batch means (see mtlens.models.filters for the reduction and `TaskUncertainty` for the weighting).
For the per-task losses the methods of mtlens.methods combine, the shared KL is split evenly:
L_j = exp(-w_j) CE_j + w_j / 2 + beta KL / T, so equal weighting gives the total above.

Trunk: Table II's MLP up to its last hidden layer (784-32-32), then the two linear heads 32 -> d (Alemi et
al.'s VIB layout). The authors' code instead ends the trunk at d and puts d -> d linear heads on it; both
give an affine map of the last hidden layer for the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.batched_heads import BatchedHeads, BatchedTaskLoss
from mtlens.models.encoders import MLPEncoder
from mtlens.models.filter_encoders import TABLE2_HIDDEN, AlexNetEncoder, ALEXNET_MIN_SIDE
from mtlens.models.filters import TaskUncertainty, check_beta
from mtlens.models.hard_sharing import MultiTaskModel
from mtlens.models.registry import MODELS

DEFAULT_MTVIB_BETA = 1e-3  # no published default for this architecture; seed 001 Table IV sweeps 0 .. 1e-1


def standard_normal_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Returns the batch mean of KL(N(mean, diag e^log_var) || N(0, I)), summed over the dims (a scalar)."""
    return 0.5 * (log_var.exp() + mean * mean - 1.0 - log_var).sum(1).mean()


class GaussianEncoder(nn.Module):
    """A trunk and two linear heads: `stats(x)` -> (mean, log-variance) [N, d]; calling it returns the mean."""

    def __init__(self, trunk: nn.Module, trunk_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.mean = nn.Linear(trunk_dim, latent_dim)
        self.log_var = nn.Linear(trunk_dim, latent_dim)
        self.latent_dim = latent_dim

    def stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (mean, log-variance) [N, d] of q(z | x)."""
        h = self.trunk(x)
        return self.mean(h), self.log_var(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the mean code [N, d] (the deterministic representation used at evaluation)."""
        return self.mean(self.trunk(x))


class MTVIB(MultiTaskModel):
    """Multi-task VIB: a stochastic shared code, KL to N(0, I), uncertainty-weighted task losses (see module doc)."""

    architecture = "mtvib"

    def __init__(self, encoder: GaussianEncoder, tasks: Sequence[TaskSpec], *, beta: float = DEFAULT_MTVIB_BETA,
                 uncertainty: bool = True, head_hidden: Sequence[int] = (), head_dropout: float = 0.0,
                 active_tasks: Sequence[int] | None = None) -> None:
        super().__init__(encoder, tasks, active_tasks)
        if np.ndim(beta) != 0:
            raise MtlensError(f"mtvib: beta is one number (the KL is shared by all tasks), got {beta!r}")
        self.register_buffer("beta", check_beta(beta, 1, "mtvib")[0])
        self.latent_dim = encoder.latent_dim
        self.heads = BatchedHeads(self.tasks, self.latent_dim, head_hidden, "relu", head_dropout)
        self.uncertainty = TaskUncertainty(len(self.tasks)) if uncertainty else None
        self._loss = BatchedTaskLoss(self.tasks)

    def objective(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Returns "stats" [N, 2d] (mean and log-variance, the shared representation), "ce" [T], "kl" (scalar), "loss" [T]."""
        mean, log_var = self.encoder.stats(batch["x"])  # type: ignore[operator]
        stats = torch.cat([mean, log_var], dim=1)
        mean, log_var = stats.split(self.latent_dim, dim=1)
        z = torch.addcmul(mean, torch.exp(0.5 * log_var), torch.randn_like(mean))
        ce = self._loss(self.heads(z.unsqueeze(0).expand(len(self.tasks), *z.shape)), batch["targets"])
        kl = standard_normal_kl(mean, log_var)
        data = ce if self.uncertainty is None else self.uncertainty(ce)
        return {"stats": stats, "ce": ce, "kl": kl, "loss": data + self.beta * kl / len(self.tasks)}

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (the active tasks' losses, the encoder's output [N, 2d]: mean and log-variance).

        The representation is the Gaussian's parameters rather than the sample: the KL reads them directly,
        and the sample is computed from them, so a Jacobian chained through them covers the whole loss.
        """
        parts = self.objective(batch)
        active = list(self.active_tasks)
        losses = parts["loss"] if len(active) == len(self.tasks) else parts["loss"][active]
        return losses, parts["stats"]

    def heads_forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {task: prediction} from the code z (the mean, when called through forward / score_batch)."""
        return self.heads.predictions(self.tasks, self.heads(z.unsqueeze(0).expand(len(self.tasks), *z.shape)))


@MODELS.register("mtvib", aliases=("mt_vib", "multi_task_vib"))
def mtvib(tasks: Sequence[TaskSpec], input_shape: Sequence[int], latent_dim: int = 4,
          beta: float = DEFAULT_MTVIB_BETA, uncertainty: bool = True, encoder_hidden: Sequence[int] = TABLE2_HIDDEN,
          head_hidden: Sequence[int] = (), head_dropout: float = 0.0) -> MTVIB:
    """Returns MTVIB on seed 001's encoders: the Table II trunk (or Table I AlexNet for 63+ px images), d = 4."""
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
        raise MtlensError(f"mtvib: latent_dim (d) must be an integer >= 1, got {latent_dim!r}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3 and min(shape[1:]) >= ALEXNET_MIN_SIDE:
        trunk_dim = 256
        trunk: nn.Module = nn.Sequential(AlexNetEncoder(shape[0], trunk_dim), nn.ReLU())
    else:
        hidden = tuple(int(h) for h in encoder_hidden)
        if not hidden:
            raise MtlensError("mtvib: encoder_hidden needs at least one layer for the mean and log-variance heads")
        trunk = nn.Sequential(MLPEncoder(int(np.prod(shape)), hidden[-1], hidden[:-1], "relu"), nn.ReLU())
        trunk_dim = hidden[-1]
    return MTVIB(GaussianEncoder(trunk, trunk_dim, int(latent_dim)), tasks, beta=beta, uncertainty=uncertainty,
                 head_hidden=head_hidden, head_dropout=head_dropout)
