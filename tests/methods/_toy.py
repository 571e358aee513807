"""A toy multi-task model for the method tests that compare whole backward passes: a linear shared layer 4 -> 3
and three linear heads on 8 fixed samples."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def linear_mtl(seed: int = 0) -> tuple[nn.Linear, nn.ModuleList, Callable[[], torch.Tensor]]:
    """Returns (shared layer, heads, a function giving the [3] squared-error task losses), seeded by `seed`."""
    torch.manual_seed(seed)
    shared = nn.Linear(4, 3)
    heads = nn.ModuleList([nn.Linear(3, 1) for _ in range(3)])
    x, y = torch.randn(8, 4), torch.randn(8, 3)

    def losses_of() -> torch.Tensor:
        z = shared(x)
        return torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)])

    return shared, heads, losses_of
