"""STCH, smooth Tchebycheff scalarisation (Lin, Zhang, Yang, Zhang & Zhang 2024, ICML, "Smooth Tchebycheff
Scalarization for Multi-Objective Optimization", eq. 9), with the paper's multi-task recipe (§5 and App. B;
the authors' STCH_MTL code, in LibMTL as `weighting/STCH.py`).

The smooth Tchebycheff scalarisation of objectives f with preference lambda and ideal point z is
mu log sum_t exp(lambda_t (f_t - z_t) / mu), a smooth upper bound of max_t lambda_t (f_t - z_t) that tightens as
mu -> 0. For multi-task learning the objectives are the log losses, f_t = log L_t, the point z is log of a
nadir vector (the tasks' average losses after a warm-up), lambda = 1, and the sum is scaled by T:

    S = T mu log sum_t exp(log(L_t / nadir_t + 1e-20) / mu)     (computed stably, max subtracted first).

Warm-up (`warmup_epochs` = W): epochs 0 .. W - 1 train on sum_t log(L_t + 1e-20); epoch W does the same and
averages the losses it sees, which become the nadir vector; STCH is used from epoch W + 1 on. Epochs are
delimited by `epoch_end()` (the life cycle). Defaults: mu = 1, W = 4 (LibMTL's, from the authors' code). The
weights reported are dS/dL. TorchJD 0.18's STCH is the bare scalarisation (preference, reference point, no
log and no warm-up); on the log losses with reference log(nadir) and preference 1 it equals ours divided by T.
"""

from __future__ import annotations

import torch

from mtlens.errors import MtlensError
from mtlens.methods.options import Integer, Real
from mtlens.methods.registry import METHODS
from mtlens.methods.scalarizations import Scalarization
from mtlens.methods.weighting_common import require_finite

_LOG_EPS = 1e-20  # the authors' offset inside the logarithms


@METHODS.register("stch", aliases=("smooth_tchebycheff",))
class STCH(Scalarization):
    """Smooth Tchebycheff scalarisation of the log losses relative to a nadir vector set after a warm-up."""

    name = "stch"
    per_task_state = True
    state_keys = ("epoch", "loss_sum", "loss_steps", "nadir")
    option_rules = {"mu": Real(0.0, low_open=True), "warmup_epochs": Integer(0)}
    mu: float
    warmup_epochs: int

    def __init__(self, n_tasks: int | None = None, level: str = "param", mu: float = 1.0,
                 warmup_epochs: int = 4) -> None:
        super().__init__(n_tasks, level, mu=mu, warmup_epochs=warmup_epochs)
        self.epoch = 0
        self.loss_sum = torch.zeros(self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type]
        self.loss_steps = 0
        #: The nadir vector (float64, CPU): all zeros until the warm-up ends.
        self.nadir = torch.zeros(self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type]

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns this epoch's scalar: the log-loss sum during the warm-up, STCH after it."""
        if self.epoch <= self.warmup_epochs:
            return (losses + _LOG_EPS).log().sum()
        logs = (losses / self.nadir.to(losses) + _LOG_EPS).log()
        top = logs.detach().max()
        return losses.shape[0] * (self.mu * torch.logsumexp((logs - top) / self.mu, dim=0) + top)

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (S, dS/dL); during the last warm-up epoch adds the losses to the nadir average."""
        require_finite(losses, self.name)
        bad = losses.detach() < 0
        if bool(bad.any()):
            t = int(bad.nonzero()[0, 0])
            raise MtlensError(f"stch: the loss of task {t} is {float(losses.detach()[t])}; STCH takes log L, so "
                              "losses must be >= 0")
        if self.epoch == self.warmup_epochs:
            self.loss_sum = self.loss_sum + losses.detach().to("cpu", torch.float64)
            self.loss_steps += 1
        return self.objective(losses), self.weights(losses)

    def epoch_end(self) -> None:
        """Closes an epoch; after the warm-up's last one, the average losses become the nadir vector."""
        if self.epoch == self.warmup_epochs:
            if self.loss_steps == 0:
                raise MtlensError("stch: epoch_end() called with no step in the epoch; call it once after each epoch")
            self.nadir = self.loss_sum / self.loss_steps
            if not bool((self.nadir > 0).all()):
                t = int((self.nadir <= 0).nonzero()[0, 0])
                raise MtlensError(f"stch: the average loss of task {t} over the warm-up is 0; STCH divides by it")
        self.epoch += 1
