"""Learning-rate schedules as Trainer step callbacks (the Trainer itself keeps a constant rate).

The rate is a function of the global step alone, so a resumed run (which restores the step) continues on the
same schedule without any state of its own.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mtlens.errors import MtlensError


class StepDecay:
    """Multiplies the base rate by `factor` every `every_steps` steps (seed 000 App. C.2: halve every 100 epochs).

    Bind it to the Trainer's optimiser after building the Trainer: `trainer = Trainer(..., callbacks=[sched])`,
    then `sched.bind(trainer.optimizer)`. It sets the rate before each step's update and logs it when it changes.
    """

    def __init__(self, base_lr: float, every_steps: int, factor: float = 0.5) -> None:
        if not base_lr > 0:
            raise MtlensError(f"base_lr must be > 0, got {base_lr}")
        if every_steps < 1:
            raise MtlensError(f"every_steps must be >= 1, got {every_steps}")
        if not 0 < factor <= 1:
            raise MtlensError(f"factor must be in (0, 1], got {factor}")
        self.base_lr, self.every_steps, self.factor = float(base_lr), int(every_steps), float(factor)
        self.optimizer: torch.optim.Optimizer | None = None
        self._last: float | None = None

    def bind(self, optimizer: torch.optim.Optimizer) -> StepDecay:
        """Attaches the optimiser whose rate this schedule sets; returns self."""
        self.optimizer = optimizer
        return self

    def lr_at(self, step: int) -> float:
        """Returns the learning rate of global step `step`."""
        return self.base_lr * self.factor ** (step // self.every_steps)

    def on_step(self, step: int, losses: torch.Tensor, shared: list[torch.Tensor], z: torch.Tensor | None) -> Mapping[str, float] | None:
        """Sets the rate of this step; returns {"train/lr": rate} when it changed, else None."""
        if self.optimizer is None:
            raise MtlensError("StepDecay is not bound to an optimiser; call schedule.bind(trainer.optimizer)")
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if lr != self._last:
            self._last = lr
            return {"train/lr": lr}
        return None
