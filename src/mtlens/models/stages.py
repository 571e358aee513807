"""Backbones cut into stages, for the architectures that put task-specific parts between shared ones.

A `Backbone` builds fresh, newly initialised copies of its stages (one per column, expert or branch node).
Each stage is `Stage(body, last)` with `forward(x) = last(body(x))`: MTAN's attention reads the body's output
u and masks the stage's output p. The cuts:

- conv (seed 000 Table 2, square images of 64k pixels): four stages, convolutions 1-2, 3-4, 5-6 (each followed
  by the activation) and the dense layer to the latent d; `ConvEncoder`'s initialisation. u = p (every
  convolution halves the resolution, so a stage has no inner point at its output's resolution).
- mlp (vectors, and images the conv encoder cannot take): one stage per dense layer of `MLPEncoder`, the
  activation after each but the last; u = p.
- resnet18 / resnet50: the stem with layer1, then layer2, layer3, layer4 (LibMTL 1.1.5's cut for cross-stitch
  and MTAN), dilated to `output_stride`; u is a layer's output before its last block, p after it (MTAN's cut).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.models.encoders import ConvEncoder, MLPEncoder
from mtlens.models.resnet import BLOCKS, LAYOUTS, BasicBlock, Bottleneck, ResNet, load_weights

BACKBONES = ("auto", "conv", "mlp", "resnet18", "resnet50")


class Stage(nn.Module):
    """One stage of a backbone: `body`, then `last` (identity where the stage has no inner cut)."""

    def __init__(self, body: nn.Module, last: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.last = nn.Identity() if last is None else last

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (u, p): the body's output and the stage's output."""
        u = self.body(x)
        return u, self.last(u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the stage's output."""
        return self.last(self.body(x))


@dataclass(frozen=True)
class Backbone:
    """How to build the stages of one backbone, and the shapes (without the batch) they produce."""

    name: str
    input_shape: tuple[int, ...]
    make: Callable[[], list[Stage]]
    #: per stage: the shape of the body's output u and of the stage's output p
    inner_shapes: tuple[tuple[int, ...], ...]
    shapes: tuple[tuple[int, ...], ...]
    #: the ResNet block type (MTAN's shared blocks are of it), None for conv and mlp
    block: type[BasicBlock] | type[Bottleneck] | None = None

    @property
    def n_stages(self) -> int:
        return len(self.shapes)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Returns the shape of the last stage's output ([d] or [C, h, w])."""
        return self.shapes[-1]

    @property
    def spatial(self) -> bool:
        """Returns True when the last stage gives feature maps."""
        return len(self.out_shape) == 3

    def stages(self) -> nn.ModuleList:
        """Returns a fresh, newly initialised copy of every stage."""
        return nn.ModuleList(self.make())

    def input_numel(self, stage: int) -> int:
        """Returns the number of values per sample that enter `stage` (the width of a gate reading them)."""
        shape = self.input_shape if stage == 0 else self.shapes[stage - 1]
        return int(np.prod(shape))

    def check_input(self, x: torch.Tensor) -> None:
        """Raises a one-line error unless x is a batch of inputs this backbone takes."""
        want = self.input_shape
        spatial_free = self.name.startswith("resnet")  # a ResNet takes any height and width
        got = tuple(x.shape[1:])
        ok = got == want or (spatial_free and x.ndim == 4 and got[0] == want[0])
        if not ok:
            shape = f"[N, {want[0]}, H, W]" if spatial_free else "[N, " + ", ".join(map(str, want)) + "]"
            raise MtlensError(f"the {self.name} backbone expects inputs {shape}, got {tuple(x.shape)}")


def _conv_stages(channels: int, latent_dim: int, activation: str, image_size: int) -> list[Stage]:
    enc = ConvEncoder(channels, latent_dim, activation, image_size=image_size)
    layers = list(enc.convs)  # (conv, activation) x 6
    convs = [Stage(nn.Sequential(*layers[i:i + 4])) for i in range(0, len(layers), 4)]
    return [*convs, Stage(nn.Sequential(nn.Flatten(1), enc.dense))]


def _mlp_stages(in_dim: int, latent_dim: int, hidden: Sequence[int], activation: str) -> list[Stage]:
    layers = list(MLPEncoder(in_dim, latent_dim, hidden, activation).net)
    stages, current = [], [nn.Flatten(1)]
    for layer in layers:
        if isinstance(layer, nn.Linear) and any(isinstance(m, nn.Linear) for m in current):
            stages.append(Stage(nn.Sequential(*current)))
            current = []
        current.append(layer)
    return [*stages, Stage(nn.Sequential(*current))]


def _resnet_stages(depth: int, channels: int, output_stride: int, weights: str | os.PathLike[str] | None) -> list[Stage]:
    net = ResNet(depth, None, output_stride, in_channels=channels)
    if weights is not None:
        load_weights(net, weights)
    layers = [net.layer1, net.layer2, net.layer3, net.layer4]
    stem = [net.conv1, net.bn1, net.relu, net.maxpool]
    return [Stage(nn.Sequential(*(stem if i == 0 else []), *layer[:-1]), layer[-1]) for i, layer in enumerate(layers)]


@torch.no_grad()
def _probe(stages: list[Stage], input_shape: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    modes = [s.training for s in stages]
    for s in stages:
        s.eval()  # BatchNorm on a probe batch must not move its running statistics
    x = torch.zeros(2, *input_shape)
    inner, outer = [], []
    for s in stages:
        u, x = s.parts(x)
        inner.append(tuple(u.shape[1:]))
        outer.append(tuple(x.shape[1:]))
    for s, mode in zip(stages, modes):
        s.train(mode)
    return tuple(inner), tuple(outer)


def resolve_backbone_name(name: str, input_shape: Sequence[int], dense: bool = False) -> str:
    """Returns the backbone for `name`: 'auto' is resnet18 for dense tasks, conv for square 64k-pixel images, else mlp."""
    if name not in BACKBONES:
        raise MtlensError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if name != "auto":
        return name
    shape = tuple(int(s) for s in input_shape)
    if dense:
        return "resnet18"
    return "conv" if len(shape) == 3 and shape[1] == shape[2] and shape[1] % 64 == 0 else "mlp"


def create_stages(name: str, input_shape: Sequence[int], latent_dim: int = 8, activation: str = "relu",
                  mlp_hidden: Sequence[int] = (256, 256), output_stride: int = 8,
                  weights: str | os.PathLike[str] | None = None, dense: bool = False) -> Backbone:
    """Returns the backbone `name` (auto, conv, mlp, resnet18, resnet50) cut into stages for `input_shape`."""
    shape = tuple(int(s) for s in input_shape)
    name = resolve_backbone_name(name, shape, dense)
    if weights is not None and not name.startswith("resnet"):
        raise MtlensError(f"weights= loads a ResNet state dict; the {name} backbone has none to load")
    block = None
    if name == "conv":
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 64:
            raise MtlensError(f"the conv backbone takes square images of 64k pixels (C, H, W), got input shape {shape}")
        make = lambda: _conv_stages(shape[0], latent_dim, activation, shape[1])  # noqa: E731
    elif name == "mlp":
        if len(shape) not in (1, 2, 3):
            raise MtlensError(f"input shape must be (C, H, W), (H, W) or (D,), got {shape}")
        make = lambda: _mlp_stages(int(np.prod(shape)), latent_dim, tuple(mlp_hidden), activation)  # noqa: E731
    else:
        if len(shape) != 3:
            raise MtlensError(f"a ResNet backbone takes images (C, H, W), got input shape {shape}")
        depth = int(name.removeprefix("resnet"))
        block = BLOCKS[LAYOUTS[depth][0]]
        make = lambda: _resnet_stages(depth, shape[0], output_stride, weights)  # noqa: E731
    inner, outer = _probe(make(), shape)
    return Backbone(name, shape, make, inner, outer, block)
