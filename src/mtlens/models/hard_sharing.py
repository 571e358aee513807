"""Hard-parameter-sharing architectures (seed 000 §3.2.1, §4.1): multi-head, one-head, single-task, random.

Every architecture has `encode(x) -> z [N, d]` (the shared representation), `forward(x) -> {task: pred}`,
`shared_parameters()`, `task_parameters()`, and `active_tasks` (the tasks whose losses are trained).
Predictions are [N] for regression and binary tasks (binary as logits) and [N, C] for multiclass tasks.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.heads import MLPHead
from mtlens.models.losses import task_losses, task_scores


def _shape_output(spec: TaskSpec, out: torch.Tensor) -> torch.Tensor:
    return out if spec.kind == "multiclass" else out.squeeze(-1)


class MultiTaskModel(nn.Module, metaclass=ABCMeta):
    """A shared encoder and task heads; subclasses define how the heads read the representation."""

    architecture = ""
    #: Method assumptions this architecture breaks, {assumption: why}; `mtlens.models.method_fit` refuses a
    #: method that makes one (hard sharing breaks none).
    broken_assumptions: Mapping[str, str] = {}

    def __init__(self, encoder: nn.Module, tasks: Sequence[TaskSpec], active_tasks: Sequence[int] | None = None) -> None:
        super().__init__()
        if not tasks:
            raise MtlensError("a multi-task model needs at least one task")
        self.encoder = encoder
        self.tasks = tuple(tasks)
        active = tuple(range(len(tasks))) if active_tasks is None else tuple(int(t) for t in active_tasks)
        if not active or any(not 0 <= t < len(tasks) for t in active):
            raise MtlensError(f"active tasks must be indices in 0..{len(tasks) - 1}, got {list(active)}")
        self.active_tasks = active

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the shared representation z [N, d]."""
        return self.encoder(x)

    @abstractmethod
    def heads_forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns each task's prediction from the shared representation."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {task name: prediction}."""
        return self.heads_forward(self.encode(x))

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (the [T_active] training losses of a batch, the shared representation they were computed from).

        The Trainer and a user's own loop call this once per step; a model whose objective adds terms per task
        (an information filter's KL, say) overrides it. The representation is what the feature-level methods
        differentiate; a model without one returns None, and feature-level methods then refuse it.
        """
        z = self.encode(batch["x"])
        return task_losses(self.tasks, self.heads_forward(z), batch["targets"], self.active_tasks), z

    def score_batch(self, batch: Mapping[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        """Returns per task (the summed test measure over the batch, the number of samples it covers).

        The measure is the squared error (regression) or the number of correct predictions (classes); the
        Trainer divides the sums by the counts. Models with per-task inputs or stochastic evaluation override it.
        """
        scores = task_scores(self.tasks, self(batch["x"]), batch["targets"])
        n = int(batch["targets"].shape[0])
        return {name: (value, n) for name, value in scores.items()}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the trainable parameters of the shared encoder."""
        return (p for p in self.encoder.parameters() if p.requires_grad)

    def task_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the trainable task-specific (head) parameters."""
        enc = {id(p) for p in self.encoder.parameters()}
        return (p for p in self.parameters() if id(p) not in enc and p.requires_grad)


class MultiHead(MultiTaskModel):
    """One head per task on the shared latent (hard parameter sharing)."""

    architecture = "multi_head"

    def __init__(self, encoder: nn.Module, tasks: Sequence[TaskSpec], latent_dim: int, head_hidden: Sequence[int] = (300, 300, 300),
                 activation_name: str = "relu", active_tasks: Sequence[int] | None = None) -> None:
        super().__init__(encoder, tasks, active_tasks)
        self.heads = nn.ModuleList([MLPHead(latent_dim, t.output_dim, head_hidden, activation_name) for t in self.tasks])

    def heads_forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t.name: _shape_output(t, h(z)) for t, h in zip(self.tasks, self.heads)}


class OneHead(MultiTaskModel):
    """One head whose output layer holds every task's outputs (multivariate regression, seed 000 Fig. 4)."""

    architecture = "one_head"

    def __init__(self, encoder: nn.Module, tasks: Sequence[TaskSpec], latent_dim: int, head_hidden: Sequence[int] = (300, 300, 300),
                 activation_name: str = "relu", active_tasks: Sequence[int] | None = None) -> None:
        super().__init__(encoder, tasks, active_tasks)
        self.widths = [t.output_dim for t in self.tasks]
        self.head = MLPHead(latent_dim, sum(self.widths), head_hidden, activation_name)

    def heads_forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(self.head(z), self.widths, dim=1)
        return {t.name: _shape_output(t, p) for t, p in zip(self.tasks, parts)}
