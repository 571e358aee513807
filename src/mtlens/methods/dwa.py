"""Dynamic weight average, DWA (Liu, Johns & Davison, CVPR 2019, "End-to-End Multi-Task Learning with
Attention", Eq. 1).

lambda_k(t) = K exp(w_k(t-1) / T) / sum_i exp(w_i(t-1) / T),  w_k(t-1) = L_k(t-1) / L_k(t-2),

with L_k(t) the average training loss of task k over epoch t, temperature T = 2 (the paper's value) and
w_k = 1 for the first two epochs, i.e. every weight is 1 in epochs 0 and 1.

Epochs: the method averages the losses it sees in `weighted_loss` (once per step) and closes an epoch when
`epoch_end()` is called, after the last step of each epoch (the life cycle of `mtlens.methods.base`, which
the Trainer follows). This is how the official MTAN code and LibMTL 1.1.5 (`weighting/DWA.py`,
`train_loss_buffer`) delimit epochs: same weights.

Zero losses: where L_k(t-2) is exactly 0 the rate is undefined; we set w_k = 1 (no change measured).
"""

from __future__ import annotations

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import LossWeighting
from mtlens.methods.options import Real
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import require_finite


@METHODS.register("dwa", aliases=("dynamic_weight_average",))
class DWA(LossWeighting):
    """Weights K softmax(r / T) of the last two epochs' loss ratios r; ones for the first two epochs."""

    name = "dwa"
    per_task_state = True
    state_keys = ("history", "epoch_sum", "epoch_steps")
    option_rules = {"temperature": Real(0.0, low_open=True)}
    temperature: float

    def __init__(self, n_tasks: int | None = None, level: str = "param", temperature: float = 2.0) -> None:
        super().__init__(n_tasks, level, temperature=temperature)
        #: Epoch-averaged losses of the finished epochs, oldest first (immutable, so saved states stay put).
        self.history: tuple[tuple[float, ...], ...] = ()
        self.epoch_sum = torch.zeros(self.n_tasks, dtype=torch.float64)  # type: ignore[arg-type]
        self.epoch_steps = 0

    @property
    def epoch(self) -> int:
        """Returns the index of the current epoch (the number of finished ones)."""
        return len(self.history)

    def weights(self, losses: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the [T] weights of the current epoch (ones in epochs 0 and 1)."""
        device = losses.device if losses is not None else "cpu"
        if self.epoch < 2:
            return torch.ones(self.n_tasks, device=device)
        last = torch.tensor(self.history[-1], dtype=torch.float64)
        before = torch.tensor(self.history[-2], dtype=torch.float64)
        ratio = torch.where(before > 0, last / before.clamp_min(torch.finfo(torch.float64).tiny), 1.0)
        w = self.n_tasks * torch.softmax(ratio / self.temperature, dim=0)
        return w.to(device=device, dtype=torch.float32)

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (sum_k lambda_k L_k, lambda) and adds the losses to the current epoch's average."""
        require_finite(losses, self.name)
        self.epoch_sum = self.epoch_sum + losses.detach().to("cpu", torch.float64)
        self.epoch_steps += 1
        w = self.weights(losses).to(losses.dtype)
        return (w * losses).sum(), w

    def epoch_end(self) -> None:
        """Closes the epoch: stores its average losses, which set the weights two epochs on."""
        if self.epoch_steps == 0:
            raise MtlensError("dwa: epoch_end() called with no step in the epoch; call it once after each epoch")
        avg = (self.epoch_sum / self.epoch_steps).tolist()
        self.history = self.history + (tuple(avg),)
        self.epoch_sum = torch.zeros(self.n_tasks, dtype=torch.float64)
        self.epoch_steps = 0
