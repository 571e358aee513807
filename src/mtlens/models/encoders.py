"""Encoders: the conv encoder of seed 000 Table 2 and an MLP encoder for vector inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlens.errors import MtlensError

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    """Returns a new activation module called `name` (relu or tanh)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise MtlensError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def mlp(widths: Sequence[int], activation_name: str) -> nn.Sequential:
    """Returns dense layers through `widths` with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(activation(activation_name))
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """Seed 000 Table 2: six 4x4 stride-2 convolutions (32, 32, 64, 128, 256, 256), then a dense layer to d.

    Initialisation as in the seed's reference runs: Xavier-normal convolutions, Kaiming-normal dense layer
    (biases zero). A 64x64 input reaches 1x1 after the six convolutions (padding 1).
    """

    channels: tuple[int, ...] = (32, 32, 64, 128, 256, 256)

    def __init__(self, in_channels: int = 1, latent_dim: int = 8, activation_name: str = "relu", image_size: int = 64) -> None:
        super().__init__()
        if latent_dim < 1:
            raise MtlensError(f"latent_dim must be >= 1, got {latent_dim}")
        if image_size < 64 or image_size % 64:
            raise MtlensError(f"the conv encoder takes square images of 64 (or a multiple) pixels, got {image_size}")
        layers: list[nn.Module] = []
        c = in_channels
        for out in self.channels:
            layers += [nn.Conv2d(c, out, kernel_size=4, stride=2, padding=1), activation(activation_name)]
            c = out
        self.convs = nn.Sequential(*layers)
        side = image_size // 2 ** len(self.channels)
        self.dense = nn.Linear(c * side * side, latent_dim)
        self.in_channels, self.latent_dim, self.image_size = in_channels, latent_dim, image_size
        for m in self.convs:
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.kaiming_normal_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the latent codes [N, d] of images [N, C, H, W]."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[-1] != self.image_size:
            raise MtlensError(
                f"conv encoder expects images [N, {self.in_channels}, {self.image_size}, {self.image_size}], "
                f"got {tuple(x.shape)}"
            )
        return self.dense(self.convs(x).flatten(1))


class MLPEncoder(nn.Module):
    """An MLP encoder for vector inputs: dense layers with the activation between, ending at width d."""

    def __init__(
        self, in_dim: int, latent_dim: int = 8, hidden: Sequence[int] = (256, 256), activation_name: str = "relu"
    ) -> None:
        super().__init__()
        self.net = mlp((in_dim, *hidden, latent_dim), activation_name)
        self.in_dim, self.latent_dim = in_dim, latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the latent codes [N, d] of inputs [N, ...] (flattened to [N, in_dim])."""
        x = x.flatten(1)
        if x.shape[1] != self.in_dim:
            raise MtlensError(f"MLP encoder expects {self.in_dim} input features, got {x.shape[1]}")
        return self.net(x)
