"""The decoder of seed 000 Table 2: transposed convolutions mirroring the conv encoder, latent -> 64x64 image.

Layer for layer as the seed's reference implementation (Abdi et al. 2019, disentanglement-pytorch's
SimpleConv64 decoder): the latent as a 1x1 map, a 1x1 convolution to 256 channels (stride 2, a no-op on 1x1),
then transposed convolutions 256 (4, stride 2, padding 1: 2x2), 128, 128, 64, 64 (4, stride 2: 6, 14, 30, 62)
and a 3x3 one to the image channels (64x64). `forward` returns logits; `decode` squashes them into [0, 1]
as the reference's `decode` does. Initialisation as ConvEncoder's: Xavier-normal weights, zero biases.
"""

from __future__ import annotations

import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.models.encoders import activation

IMAGE_SIZE = 64


class ConvDecoder(nn.Module):
    """Seed 000 Table 2 decoder: latent codes [N, d] -> image logits [N, C, 64, 64]."""

    channels: tuple[int, ...] = (256, 256, 128, 128, 64, 64)

    def __init__(self, out_channels: int = 1, latent_dim: int = 8, activation_name: str = "relu",
                 image_size: int = IMAGE_SIZE) -> None:
        super().__init__()
        if latent_dim < 1:
            raise MtlensError(f"latent_dim must be >= 1, got {latent_dim}")
        if out_channels < 1:
            raise MtlensError(f"out_channels must be >= 1, got {out_channels}")
        if image_size != IMAGE_SIZE:
            raise MtlensError(f"the Table-2 decoder makes {IMAGE_SIZE}x{IMAGE_SIZE} images, got image_size {image_size}")
        c = self.channels
        layers: list[nn.Module] = [nn.Conv2d(latent_dim, c[0], kernel_size=1, stride=2), activation(activation_name),
                                   nn.ConvTranspose2d(c[0], c[1], kernel_size=4, stride=2, padding=1),
                                   activation(activation_name)]
        for a, b in zip(c[1:-1], c[2:]):
            layers += [nn.ConvTranspose2d(a, b, kernel_size=4, stride=2), activation(activation_name)]
        layers.append(nn.ConvTranspose2d(c[-1], out_channels, kernel_size=3, stride=1))
        self.net = nn.Sequential(*layers)
        self.out_channels, self.latent_dim, self.image_size = out_channels, latent_dim, image_size
        for m in self.net:
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Returns the (C, H, W) of the images it makes."""
        return (self.out_channels, self.image_size, self.image_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Returns image logits [N, C, 64, 64] for latent codes z [N, d]."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise MtlensError(f"the decoder expects latent codes [N, {self.latent_dim}], got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Returns images [N, C, 64, 64] in [0, 1] (the sigmoid of the logits) for latent codes z [N, d]."""
        return torch.sigmoid(self(z))
