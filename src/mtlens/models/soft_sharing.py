"""The frame of the soft-sharing architectures (cross-stitch, MMoE, MTAN, CGC, PLE, DSelect-k, LTB): a trunk
that gives every task its own features, and one head per task.

A trunk declares, per architecture:

- its shared parameters (those that reach more than one task's loss) and each task's own parameters (those
  that reach only that task's loss), which together are all of its parameters. The gradient methods take
  per-task Jacobians over the shared ones and give each task's own parameters that task's gradient;
- its cut: the one tensor that every path from the shared parameters to the losses crosses (the input of
  the task-specific part, batch first), which `step_losses` returns as the representation that the
  feature-level surrogate differentiates (seed 004 §2.4) and through which the parameter-level Jacobian is
  chained; None where no such tensor exists, declared in `broken_assumptions` (see `method_fit`);
- its codes: what `encode(x)` returns for the disentanglement metrics, the codes of the trunk's last stage
  concatenated (each architecture's docstring says which).

Heads: for tasks of a factor dataset (`TaskSpec`), seed 000 Table 3's MLP heads on each task's features
(globally average-pooled first when the backbone gives feature maps); for dense tasks (`DenseTask`), the
dense heads of `mtlens.models.dense_heads`, upsampled to the image (as `DenseMultiTaskModel`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.dense import DenseTask
from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.dense_heads import build_head
from mtlens.models.dense_losses import dense_loss, dense_score
from mtlens.models.hard_sharing import MultiTaskModel, _shape_output
from mtlens.models.heads import MLPHead
from mtlens.models.losses import task_loss, task_scores
from mtlens.models.stages import Backbone


@dataclass
class TrunkOutput:
    """What a trunk computes for a batch."""

    #: one tensor per task (all tasks, in task order): what its head reads
    features: list[torch.Tensor]
    #: the shared representation (see the module docstring), or None
    cut: torch.Tensor | None
    #: the parts of `encode(x)`, each [N, k, ...], concatenated along their second dimension
    codes: list[torch.Tensor]
    #: [T] regularisers of each task's own parameters, added to that task's loss (DSelect-k's gate), or None
    penalties: torch.Tensor | None = None


def stack_codes(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Returns [N, K, ...] codes as [N, K * C, ...]: vectors side by side, feature maps channel by channel."""
    return torch.cat([p.flatten(1, 2) for p in parts], dim=1)


def mix(weights: torch.Tensor, stacked: torch.Tensor) -> torch.Tensor:
    """Returns sum_k w_k x_k for weights [K] or [N, K] and stacked inputs [N, K, ...]."""
    w = weights if weights.ndim == 2 else weights.unsqueeze(0)
    return (w.reshape(*w.shape, *([1] * (stacked.ndim - 2))) * stacked).sum(1)


def mix_rows(weights: torch.Tensor, stacked: torch.Tensor) -> list[torch.Tensor]:
    """Returns [sum_k W_ik x_k for each row i] for weights [I, K] and stacked inputs [N, K, ...], in one matmul."""
    n, k = stacked.shape[:2]
    out = torch.matmul(weights, stacked.reshape(n, k, -1))
    return list(out.view(n, weights.shape[0], *stacked.shape[2:]).unbind(1))


class Trunk(nn.Module):
    """Gives every task its own features; declares the shared / task parameter split, the cut and the codes."""

    architecture = ""

    def __init__(self, backbone: Backbone, n_tasks: int) -> None:
        super().__init__()
        self.backbone_spec = backbone
        self.n_tasks = n_tasks
        #: Method assumptions this trunk breaks: {assumption: why} (see `mtlens.models.method_fit`).
        self.broken_assumptions: dict[str, str] = {}

    @abstractmethod
    def forward(self, x: torch.Tensor) -> TrunkOutput:
        """Returns the per-task features, the cut and the codes of a batch."""

    @abstractmethod
    def shared_parameters(self) -> list[nn.Parameter]:
        """Returns the parameters that reach more than one task's loss (the last shared layer last)."""

    @abstractmethod
    def task_parameters(self, task: int) -> list[nn.Parameter]:
        """Returns the parameters that reach only task `task`'s loss."""

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Returns the shape of one task's features (without the batch)."""
        return self.backbone_spec.out_shape


class _VectorOutputs(nn.Module):
    """MLP heads on each task's features (pooled when they are maps); TaskSpec losses and scores."""

    def __init__(self, tasks: Sequence[TaskSpec], feature_shape: tuple[int, ...], hidden: Sequence[int],
                 activation_name: str) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.heads = nn.ModuleList([MLPHead(feature_shape[0], t.output_dim, hidden, activation_name) for t in self.tasks])

    def predict(self, features: Sequence[torch.Tensor], size: Sequence[int], which: Sequence[int]) -> dict[str, torch.Tensor]:
        out = {}
        for t in which:
            z = features[t]
            z = z.mean(dim=(-2, -1)) if z.ndim == 4 else z
            out[self.tasks[t].name] = _shape_output(self.tasks[t], self.heads[t](z))
        return out

    def losses(self, preds: Mapping[str, torch.Tensor], targets: torch.Tensor, which: Sequence[int]) -> torch.Tensor:
        return torch.stack([task_loss(self.tasks[t], preds[self.tasks[t].name], targets[:, t]) for t in which])

    def scores(self, preds: Mapping[str, torch.Tensor], targets: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
        n = int(targets.shape[0])
        return {name: (value, n) for name, value in task_scores(self.tasks, preds, targets).items()}


class _DenseOutputs(nn.Module):
    """Dense heads on each task's feature map, upsampled to the image; dense losses and scores."""

    def __init__(self, tasks: Sequence[DenseTask], feature_shape: tuple[int, ...], head: str,
                 head_options: Mapping[str, Any] | None) -> None:
        super().__init__()
        if len(feature_shape) != 3:
            raise MtlensError("dense tasks need a backbone that gives feature maps (resnet18, resnet50), not vectors")
        self.tasks = tuple(tasks)
        self.heads = nn.ModuleList([build_head(head, feature_shape[0], t.channels, **dict(head_options or {}))
                                    for t in self.tasks])

    def predict(self, features: Sequence[torch.Tensor], size: Sequence[int], which: Sequence[int]) -> dict[str, torch.Tensor]:
        return {self.tasks[t].name: F.interpolate(self.heads[t](features[t]), size=tuple(size), mode="bilinear",
                                                  align_corners=False) for t in which}

    def losses(self, preds: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], which: Sequence[int]) -> torch.Tensor:
        return torch.stack([dense_loss(self.tasks[t], preds[self.tasks[t].name], targets[self.tasks[t].name]) for t in which])

    def scores(self, preds: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, int]]:
        return {t.name: dense_score(t, preds[t.name], targets[t.name]) for t in self.tasks}


class SoftSharingModel(MultiTaskModel):
    """A trunk (`encoder`) and one head per task; the architecture's declarations come from its trunk."""

    def __init__(self, trunk: Trunk, tasks: Sequence[TaskSpec] | Sequence[DenseTask], head_hidden: Sequence[int] = (300, 300, 300),
                 head_activation: str = "relu", head: str = "aspp", head_options: Mapping[str, Any] | None = None,
                 active_tasks: Sequence[int] | None = None) -> None:
        tasks = tuple(tasks)
        dense = bool(tasks) and all(isinstance(t, DenseTask) for t in tasks)
        if not dense and not all(isinstance(t, TaskSpec) for t in tasks):
            raise MtlensError("give the tasks of one kind: TaskSpecs (factor and task data) or DenseTasks (dense benchmarks)")
        super().__init__(trunk, [t.spec for t in tasks] if dense else tasks, active_tasks)
        self.architecture = trunk.architecture
        self.outputs: _VectorOutputs | _DenseOutputs = (
            _DenseOutputs(tasks, trunk.feature_shape, head, head_options) if dense
            else _VectorOutputs(tasks, trunk.feature_shape, head_hidden, head_activation))
        self._check_partition()

    def _check_partition(self) -> None:
        shared = {id(p) for p in self.encoder.shared_parameters()}
        own = [id(p) for t in range(len(self.tasks)) for p in self.encoder.task_parameters(t)]
        every = {id(p) for p in self.encoder.parameters()}
        if shared & set(own) or len(own) != len(set(own)) or shared | set(own) != every:
            raise RuntimeError(f"{self.architecture}: the trunk's shared and task parameters must partition its parameters")

    @property
    def broken_assumptions(self) -> Mapping[str, str]:  # type: ignore[override]
        """Returns the method assumptions this architecture breaks (declared by its trunk)."""
        return self.encoder.broken_assumptions

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the architecture's codes: [N, k] (vectors) or [N, k, h, w] (feature maps); see its docstring."""
        self.encoder.backbone_spec.check_input(x)
        return stack_codes(self.encoder(x).codes)

    def heads_forward(self, features: Sequence[torch.Tensor], size: Sequence[int] | None = None) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Returns each task's prediction from its features (dense maps upsampled to `size`)."""
        return self.outputs.predict(features, size or (), range(len(self.tasks)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {task name: prediction}."""
        self.encoder.backbone_spec.check_input(x)
        return self.outputs.predict(self.encoder(x).features, x.shape[-2:], range(len(self.tasks)))

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (the [T_active] losses, each plus its task's own regulariser where the trunk has one; the cut)."""
        x = batch["x"]
        self.encoder.backbone_spec.check_input(x)
        out = self.encoder(x)
        preds = self.outputs.predict(out.features, x.shape[-2:], self.active_tasks)
        losses = self.outputs.losses(preds, batch["targets"], self.active_tasks)
        if out.penalties is not None:
            losses = losses + out.penalties[list(self.active_tasks)]
        return losses, out.cut

    def score_batch(self, batch: Mapping[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        """Returns per task (summed test measure, count), as `MultiTaskModel.score_batch` / the dense model."""
        return self.outputs.scores(self(batch["x"]), batch["targets"])

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the trainable shared parameters (the trunk's declaration)."""
        return (p for p in self.encoder.shared_parameters() if p.requires_grad)

    def task_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the trainable task-specific parameters: every task's trunk parameters and the heads."""
        shared = {id(p) for p in self.encoder.shared_parameters()}
        return (p for p in self.parameters() if id(p) not in shared and p.requires_grad)

    def own_parameters(self, task: int) -> list[nn.Parameter]:
        """Returns the parameters that reach only task `task`'s loss: its trunk parameters and its head."""
        return [*self.encoder.task_parameters(task), *self.outputs.heads[task].parameters()]
