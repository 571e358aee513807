"""Multi-Task Attention Network, MTAN (Liu, Johns & Davison, CVPR 2019, §3.1, eq. 1).

A shared backbone and, per task, a soft attention module at every stage j: with u_j the stage's inner output
and p_j its output (see `mtlens.models.stages`), task t's mask a_tj = h_tj([u_j ; g_{j-1}(â_{t,j-1})]) (u_1
alone at the first stage) and its attended features â_tj = a_tj * p_j; g_j is a block shared by the tasks
that takes â_tj to the next stage's channels and resolution (max-pooled where the resolution differs).
Task t reads â_tS after the last stage. The attention h_tj is LibMTL's / the official code's: 1x1 conv,
BatchNorm, ReLU, 1x1 conv, BatchNorm, sigmoid, with in / (ch / expansion) / ch channels; on vector stages the
same with dense layers. g_j: on a ResNet, LibMTL's block (a BasicBlock / Bottleneck of the backbone's type with
a 1x1 projection, then max-pooled); on the conv encoder, max-pooling to the next stage's resolution, then a
3x3 convolution and the activation (pooling first: the stride-2 convolutions shrink a stage's output 4 times
in each direction, and a convolution at the larger size would cost every task 8 times the backbone); into a
vector stage, a dense layer and the activation. On the conv encoder the last stage is the dense layer to d, so each task's features
are the shared latent under its own mask.

Split: the backbone and the g blocks are shared (g_j reaches every task, through each task's features);
task t's attention modules and head are its own. The feature-level surrogate is undefined: the backbone
reaches the losses through every stage's attention and through the shared g blocks applied to each task's
attended features, so no one tensor crosses every path; `step_losses` returns None and the feature level is
refused. The last shared layer is the backbone's last (the g blocks are listed first). The codes (`encode`)
are the shared backbone's output: the latent d on the conv encoder, as hard sharing's.

LibMTL 1.1.5's `MTAN` (ResNet only) computes the same features (equal outputs on copied weights:
tests/models/test_soft_sharing_libmtl.py); it counts only the backbone as shared, leaving its g blocks out of
both its shared parameters and the tasks' (they receive the summed gradient).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.models.encoders import activation
from mtlens.models.soft_sharing import Trunk, TrunkOutput
from mtlens.models.stages import Backbone


def attention(shape_in: int, shape: tuple[int, ...], expansion: int) -> nn.Sequential:
    """Returns an attention module from `shape_in` channels to a mask of `shape`'s channels."""
    ch = shape[0]
    mid = max(ch // expansion, 1)
    if len(shape) == 3:
        return nn.Sequential(nn.Conv2d(shape_in, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                             nn.Conv2d(mid, ch, 1), nn.BatchNorm2d(ch), nn.Sigmoid())
    return nn.Sequential(nn.Linear(shape_in, mid), nn.BatchNorm1d(mid), nn.ReLU(inplace=True),
                         nn.Linear(mid, ch), nn.BatchNorm1d(ch), nn.Sigmoid())


def shared_block(backbone: Backbone, src: tuple[int, ...], dst: tuple[int, ...], activation_name: str) -> nn.Module:
    """Returns the shared block g taking attended features of shape `src` to the channels of `dst`."""
    if backbone.block is not None:
        block = backbone.block
        planes = dst[0] // block.expansion
        down = nn.Sequential(nn.Conv2d(src[0], planes * block.expansion, 1, bias=False), nn.BatchNorm2d(planes * block.expansion))
        return block(src[0], planes, 1, down)
    if len(src) == 3 and len(dst) == 3:
        return nn.Sequential(nn.AdaptiveMaxPool2d(tuple(dst[1:])), nn.Conv2d(src[0], dst[0], 3, padding=1),
                             activation(activation_name))
    n_in = src[0] if len(src) == 1 else src[0] * src[1] * src[2]
    return nn.Sequential(nn.Flatten(1), nn.Linear(n_in, dst[0]), activation(activation_name))


class MTANTrunk(Trunk):
    """A shared backbone with a task attention module at every stage and shared blocks between them."""

    architecture = "mtan"

    def __init__(self, backbone: Backbone, n_tasks: int, activation_name: str = "relu") -> None:
        super().__init__(backbone, n_tasks)
        self.backbone = backbone.stages()
        expansion = 1 if backbone.block is None else backbone.block.expansion
        inner, outer = backbone.inner_shapes, backbone.shapes
        self.attention = nn.ModuleList([
            nn.ModuleList([attention(inner[j][0] * (1 if j == 0 else 2), outer[j], expansion) for j in range(len(outer))])
            for _ in range(n_tasks)])
        self.blocks = nn.ModuleList([shared_block(backbone, outer[j], inner[j + 1], activation_name) for j in range(len(outer) - 1)])
        self.broken_assumptions["shared_representation"] = (
            "the backbone reaches the losses through every stage's attention and through shared blocks applied "
            "to each task's attended features")

    def forward(self, x: torch.Tensor) -> TrunkOutput:
        """Returns each task's attended features after the last stage, no cut, and the backbone's output."""
        h = x
        attended: list[torch.Tensor | None] = [None] * self.n_tasks
        for j, stage in enumerate(self.backbone):
            u, h = stage.parts(h)
            for t in range(self.n_tasks):
                prev = attended[t]
                if prev is not None and prev.ndim == 4 and prev.shape[-2:] != u.shape[-2:]:
                    prev = F.adaptive_max_pool2d(prev, u.shape[-2:])
                mask = self.attention[t][j](u if prev is None else torch.cat([u, prev], dim=1))
                a = mask * h
                attended[t] = self.blocks[j](a) if j < len(self.blocks) else a
        return TrunkOutput(list(attended), None, [h.unsqueeze(1)])  # type: ignore[arg-type]

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.blocks.parameters(), *self.backbone.parameters()]

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        return list(self.attention[task].parameters())
