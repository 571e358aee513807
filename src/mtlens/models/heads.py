"""Task heads: seed 000 Table 3, dense 300-300-300-out with the activation between layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtlens.models.encoders import mlp


class MLPHead(nn.Module):
    """Dense layers (default 300-300-300) then the output layer; no activation after the last layer."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (300, 300, 300), activation_name: str = "relu") -> None:
        super().__init__()
        self.net = mlp((in_dim, *hidden, out_dim), activation_name)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Returns the head's outputs [N, out_dim]."""
        return self.net(z)
