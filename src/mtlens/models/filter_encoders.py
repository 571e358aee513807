"""The deterministic encoders f_theta of seed 001: the MLP of Table II and the AlexNet-style conv net of Table I.

Table II (MultiMNIST, Grouped-MNIST): flatten, Linear 784->32 + ReLU, Linear 32->32 + ReLU, Linear 32->d.
Table I (MTFL, 256x256 images): AlexNet's feature stack up to its adaptive 6x6 average pooling, then
Linear 9216->d. The table prints strides of 2 for the 2nd-5th convolutions, but with those a 256 px image
shrinks to 1x1 before the last 3x3 max-pooling; the authors load torchvision's AlexNet features (their code,
`init_pretrained_encoder`), whose strides are 4, 1, 1, 1, 1 -- the layout built here, randomly initialised
(nothing is downloaded; the seed starts from ImageNet weights, frozen up to the pooling).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.models.encoders import MLPEncoder

TABLE2_HIDDEN = (32, 32)
ALEXNET_MIN_SIDE = 63  # the smallest input whose feature map survives the three 3x3 / stride-2 max-poolings


class AlexNetEncoder(nn.Module):
    """Seed 001 Table I encoder: AlexNet features (64-192-384-256-256 channels), 6x6 average pool, Linear to d."""

    def __init__(self, in_channels: int = 3, latent_dim: int = 256) -> None:
        super().__init__()
        if latent_dim < 1:
            raise MtlensError(f"latent_dim must be >= 1, got {latent_dim}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.AdaptiveAvgPool2d((6, 6)),
        )  # fmt: skip
        self.dense = nn.Linear(256 * 6 * 6, latent_dim)
        self.in_channels, self.latent_dim = in_channels, latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the codes [N, d] of images [N, C, H, W]."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or min(x.shape[-2:]) < ALEXNET_MIN_SIDE:
            raise MtlensError(
                f"the AlexNet encoder expects images [N, {self.in_channels}, H, W] with H, W >= {ALEXNET_MIN_SIDE}, "
                f"got {tuple(x.shape)}"
            )
        return self.dense(self.features(x).flatten(1))


ENCODERS = ("mlp", "alexnet")


def filter_encoder(input_shape: Sequence[int], latent_dim: int, encoder: str = "auto",
                   hidden: Sequence[int] = TABLE2_HIDDEN) -> nn.Module:
    """Returns seed 001's encoder for inputs of `input_shape`: "auto" picks AlexNet for images of 63+ px, else the MLP."""
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
        raise MtlensError(f"latent_dim (d) must be an integer >= 1, got {latent_dim!r}")
    shape = tuple(int(s) for s in input_shape)
    if encoder == "auto":
        big = len(shape) == 3 and min(shape[1:]) >= ALEXNET_MIN_SIDE
        encoder = "alexnet" if big else "mlp"
    if encoder == "alexnet":
        if len(shape) != 3:
            raise MtlensError(f"the AlexNet encoder takes images (C, H, W), got input shape {shape}")
        return AlexNetEncoder(shape[0], int(latent_dim))
    if encoder == "mlp":
        return MLPEncoder(int(np.prod(shape)), int(latent_dim), tuple(hidden), "relu")
    raise MtlensError(f"unknown encoder {encoder!r}; choose auto, {', '.join(ENCODERS)}")
