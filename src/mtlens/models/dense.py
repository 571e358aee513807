"""Dense multi-task models: a ResNet backbone (the shared parameters) and one dense head per task.

The representation is the backbone's output feature map [N, C, h, w]: it is what `step_losses` returns, so
every method of `mtlens.methods` runs at parameter level (Jacobians w.r.t. the backbone's parameters) and at
feature level (w.r.t. the feature map, seed 004 §2.4) with the Trainer or a user's loop. Heads predict at the
feature map's resolution and are upsampled bilinearly to the image (as LibMTL's NYU-v2 set-up).

`create_model("dense_resnet", tasks, input_shape, backbone="resnet18", output_stride=8, head="aspp")` builds
one from the dense tasks of a dataset (`dataset.tasks`); `active_tasks=(t,)` trains task t alone (the
single-task baselines of the relative gain Δm).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.dense import DenseTask
from mtlens.errors import MtlensError
from mtlens.models.dense_heads import build_head
from mtlens.models.dense_losses import dense_loss, dense_score
from mtlens.models.hard_sharing import MultiTaskModel
from mtlens.models.registry import MODELS
from mtlens.models.resnet import ResNet, create_backbone


class DenseMultiTaskModel(MultiTaskModel):
    """A ResNet feature map shared by per-task dense heads (hard parameter sharing for dense prediction)."""

    architecture = "dense_resnet"

    def __init__(self, backbone: ResNet, tasks: Sequence[DenseTask], head: str = "aspp",
                 head_options: Mapping[str, Any] | None = None, active_tasks: Sequence[int] | None = None) -> None:
        tasks = tuple(tasks)
        if not all(isinstance(t, DenseTask) for t in tasks):
            raise MtlensError("a dense model needs DenseTask tasks (a dense dataset's `tasks`), not TaskSpecs")
        super().__init__(backbone, [t.spec for t in tasks], active_tasks)
        self.dense_tasks = tasks
        self.heads = nn.ModuleDict({t.name: build_head(head, backbone.feature_dim, t.channels, **dict(head_options or {}))
                                    for t in tasks})

    def heads_forward(self, z: torch.Tensor, size: Sequence[int] | None = None,
                      tasks: Sequence[DenseTask] | None = None) -> dict[str, torch.Tensor]:
        """Returns each task's prediction map, upsampled to `size` (H, W) when given."""
        out = {}
        for t in self.dense_tasks if tasks is None else tasks:
            pred = self.heads[t.name](z)
            out[t.name] = pred if size is None else F.interpolate(pred, size=tuple(size), mode="bilinear", align_corners=False)
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {task: prediction [N, channels, H, W]} at the image's resolution."""
        return self.heads_forward(self.encode(x), x.shape[-2:])

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (the [T_active] dense losses over valid pixels, the feature map they were computed from)."""
        x, targets = batch["x"], batch["targets"]
        z = self.encode(x)
        active = [self.dense_tasks[t] for t in self.active_tasks]
        preds = self.heads_forward(z, x.shape[-2:], active)
        return torch.stack([dense_loss(t, preds[t.name], targets[t.name]) for t in active]), z

    def score_batch(self, batch: Mapping[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        """Returns per task (summed measure, valid pixels): correct pixels (segmentation), squared error (else)."""
        preds = self(batch["x"])
        return {t.name: dense_score(t, preds[t.name], batch["targets"][t.name]) for t in self.dense_tasks}


@MODELS.register("dense_resnet", aliases=("dense",))
def dense_resnet(tasks: Sequence[DenseTask], input_shape: Sequence[int] = (3, 288, 384), backbone: str = "resnet18",
                 output_stride: int = 8, head: str = "aspp", head_options: Mapping[str, Any] | None = None,
                 weights: str | os.PathLike[str] | None = None, active_tasks: Sequence[int] | None = None) -> DenseMultiTaskModel:
    """Returns a dense multi-task model: a dilated ResNet backbone (random, or `weights` from a local file) and heads."""
    if len(input_shape) != 3 or int(input_shape[0]) != 3:
        raise MtlensError(f"a dense ResNet model takes RGB images (3, H, W), got input shape {tuple(input_shape)}")
    net = create_backbone(backbone, output_stride=output_stride, weights=weights)
    return DenseMultiTaskModel(net, tasks, head, head_options, active_tasks)
