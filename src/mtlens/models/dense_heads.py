"""Per-task heads for dense prediction on a backbone feature map: DeepLab-v3's ASPP head and a light decoder.

`aspp` is the head of LibMTL's NYU-v2 / CityScapes examples and of MTAN's ResNet baselines (Chen et al. 2017,
DeepLab-v3): parallel 1x1, three 3x3 atrous (rates 12, 24, 36) and image-pooling branches of 256 channels,
a 1x1 projection with dropout 0.5, then 3x3 conv, BatchNorm, ReLU and the 1x1 classifier. `light` is one 3x3
conv (64 channels by default), BatchNorm, ReLU and the 1x1 output conv: the cheap head for CPU-scale runs.
Both return [N, out, h, w] at the feature map's resolution; the model upsamples to the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.errors import MtlensError


def _conv_bn_relu(cin: int, cout: int, kernel: int, dilation: int = 1) -> list[nn.Module]:
    pad = dilation * (kernel // 2)
    return [nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class ImagePooling(nn.Module):
    """ASPP's image-level branch: global average, 1x1 conv, BatchNorm, ReLU, broadcast back to the map."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the pooled features broadcast to x's height and width."""
        return F.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPPHead(nn.Module):
    """DeepLab-v3 head: atrous spatial pyramid pooling, projection, 3x3 conv, 1x1 output."""

    def __init__(self, cin: int, cout: int, rates: Sequence[int] = (12, 24, 36), width: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        branches: list[nn.Module] = [nn.Sequential(*_conv_bn_relu(cin, width, 1))]
        branches += [nn.Sequential(*_conv_bn_relu(cin, width, 3, int(r))) for r in rates]
        branches.append(ImagePooling(cin, width))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(*_conv_bn_relu(len(branches) * width, width, 1), nn.Dropout(dropout))
        self.decode = nn.Sequential(*_conv_bn_relu(width, width, 3), nn.Conv2d(width, cout, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Returns the task's output map [N, cout, h, w]."""
        return self.decode(self.project(torch.cat([b(z) for b in self.branches], dim=1)))


class LightHead(nn.Module):
    """3x3 conv, BatchNorm, ReLU, 1x1 output conv."""

    def __init__(self, cin: int, cout: int, width: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn_relu(cin, width, 3), nn.Conv2d(width, cout, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Returns the task's output map [N, cout, h, w]."""
        return self.body(z)


HEADS: dict[str, Callable[..., nn.Module]] = {"aspp": ASPPHead, "light": LightHead}


def build_head(kind: str, cin: int, cout: int, **options: object) -> nn.Module:
    """Returns a new dense head of `kind` (aspp or light) from cin feature channels to cout outputs."""
    if kind not in HEADS:
        raise MtlensError(f"unknown dense head {kind!r}; choose one of {', '.join(HEADS)}")
    return HEADS[kind](cin, cout, **options)
