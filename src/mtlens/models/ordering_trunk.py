"""Layer ordering behind a shared image trunk (seed 003 §4.4, CelebA): every task sees the same image.

E_i is one encoder shared by all tasks: a ResNet truncated at its final average pooling layer, then a linear
layer projecting the embedding to `projection` units. Then D dense ReLU core layers of `width` units in
parallel or soft order (optionally with the identity layer among them), a dropout after each depth, and one
decoder per task: a dense logit per attribute (sigmoid, binary cross-entropy) and, when the landmark task is
included, a dense regression of its coordinates (MSE). The core and decoders are a `LayerOrderingModel` with
identity encoders, fed the projected embedding once per task.

Batches: {"x": images [B, 3, S, S], "targets": [B, n_binary] (one column per binary task, in task order), and
for each regression task a tensor under its name (CelebA's "landmarks" [B, 10])}.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.losses import task_loss
from mtlens.models.ordering import LayerOrderingModel
from mtlens.models.registry import MODELS
from mtlens.models.resnet import create_backbone


class TrunkOrderingModel(nn.Module):
    """A shared ResNet trunk and projection, then parallel or soft ordering of D dense core layers per task."""

    def __init__(
        self,
        tasks: Sequence[TaskSpec],
        ordering: str = "soft",
        backbone: str = "resnet50",
        weights: str | None = None,
        projection: int = 256,
        depth: int = 4,
        width: int = 256,
        dropout: float = 0.5,
        identity_layer: bool = False,
        output_dims: Sequence[int] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if ordering not in ("parallel", "soft"):
            raise MtlensError(f"a trunk ordering model is parallel or soft (seed 003 §4.4), got ordering {ordering!r}")
        if any(t.kind == "multiclass" for t in tasks):
            raise MtlensError("a trunk ordering model takes binary and regression tasks (CelebA's attributes and landmarks)")
        self.tasks = tuple(tasks)
        self.active_tasks = tuple(range(len(self.tasks)))
        self.ordering = ordering
        self.architecture = f"{ordering}_ordering_{backbone}"
        torch.manual_seed(seed)  # the trunk and projection initialise from torch's generator
        self.trunk = create_backbone(backbone, pool=True, weights=weights)
        self.project = nn.Linear(self.trunk.feature_dim, projection)
        self.head = LayerOrderingModel(self.tasks, [(projection,)] * len(self.tasks), ordering=ordering, depth=depth,
                                       width=width, dropout=dropout, encoder="identity", identity_layer=identity_layer,
                                       output_dims=output_dims, seed=seed)
        self._binary = [t for t, spec in enumerate(self.tasks) if spec.kind == "binary"]

    def scales(self) -> torch.Tensor:
        """Returns the scales [T, L, D] of the core (one-hot for parallel ordering)."""
        return self.head.scales()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {task name: prediction} for images x [B, 3, S, S]."""
        z = self.project(self.trunk(x))
        return self.head(z.unsqueeze(0).expand(len(self.tasks), *z.shape))

    def _targets(self, batch: Mapping[str, Any]) -> list[torch.Tensor]:
        columns = iter(range(batch["targets"].shape[1]))
        out = []
        for spec in self.tasks:
            if spec.kind == "binary":
                out.append(batch["targets"][:, next(columns)])
            elif spec.name in batch:
                out.append(batch[spec.name])
            else:
                raise MtlensError(f"the batch has no {spec.name!r} targets for the regression task of that name")
        return out

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, None]:
        """Returns (the [T] task losses, None: after the projection each task mixes the core its own way)."""
        preds = self(batch["x"])
        return torch.stack([task_loss(s, preds[s.name], y) for s, y in zip(self.tasks, self._targets(batch))]), None

    def score_batch(self, batch: Mapping[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        """Returns per task (number correct, rows) for attributes and (summed squared error, coordinates) for regression."""
        preds = self(batch["x"])
        out = {}
        for spec, y in zip(self.tasks, self._targets(batch)):
            p = preds[spec.name]
            if spec.kind == "binary":
                out[spec.name] = (((p > 0).float() == y).sum().float(), int(y.shape[0]))
            else:
                out[spec.name] = (((p - y) ** 2).sum(), int(y.numel()))
        return out

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the trainable shared parameters: trunk, projection and core layers."""
        yield from (p for p in self.trunk.parameters() if p.requires_grad)
        yield from self.project.parameters()
        yield from self.head.shared_parameters()

    def task_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the trainable task-specific parameters: decoders and soft-ordering scales."""
        return self.head.task_parameters()


def trunk_ordering(tasks: Sequence[TaskSpec], input_shape: Sequence[int] | None = None, **options: Any) -> TrunkOrderingModel:
    """Returns a trunk ordering model (input_shape is unused: the ResNet takes any image size >= 32)."""
    return TrunkOrderingModel(tasks, **options)


MODELS.add("trunk_ordering", trunk_ordering)
