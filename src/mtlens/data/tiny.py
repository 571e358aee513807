"""A tiny factor dataset for tests and examples: three shapes on an 8 x 8 grid of positions."""

from __future__ import annotations

import os

import numpy as np
import torch

from mtlens.data.base import FactorDataset, Source
from mtlens.data.registry import FACTOR_DATASETS
from mtlens.errors import MtlensError


@FACTOR_DATASETS.register("tiny")
class TinyShapes(FactorDataset):
    """Grey-level 1-channel images of a square, a cross or a disc at one of n x n positions.

    Factors: shape (3), pos_x (n), pos_y (n); images are rendered exactly (no anti-aliasing), so equal
    factors give equal images everywhere.
    """

    name = "tiny"
    value_names = {"shape": ("square", "cross", "disc")}

    def __init__(
        self, image_size: int = 64, num_positions: int = 8, data_dir: str | os.PathLike[str] | None = None
    ) -> None:
        # data_dir is accepted like every dataset's (the factories pass it) and unused: tiny is always drawn
        if image_size < 8 or num_positions < 2:
            raise MtlensError(f"tiny: need image_size >= 8 and num_positions >= 2, got {image_size}, {num_positions}")
        self.image_size = image_size
        self.factor_names = ("shape", "pos_x", "pos_y")
        self.factor_sizes = (3, num_positions, num_positions)
        self.image_shape = (1, image_size, image_size)
        self.source = Source("renderer", "tiny test shapes, drawn exactly")
        r = max(2, image_size // 8)
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        self._masks = np.stack(
            [
                np.ones_like(xx, dtype=bool),
                (np.abs(xx) <= r // 3) | (np.abs(yy) <= r // 3),
                xx**2 + yy**2 <= r**2,
            ]
        ).astype(np.float32)
        self._r = r
        self._centres = np.linspace(r, image_size - 1 - r, num_positions).round().astype(int)

    @property
    def factor_value_table(self) -> tuple[np.ndarray, ...]:
        pos = np.linspace(0.0, 1.0, self.factor_sizes[1])
        return (np.arange(3, dtype=np.float64), pos, pos)

    def _render(self, indices: np.ndarray) -> torch.Tensor:
        cls = np.stack(np.unravel_index(indices, self.factor_sizes), axis=1)
        out = np.zeros((len(indices), 1, self.image_size, self.image_size), dtype=np.float32)
        r = self._r
        for i, (s, px, py) in enumerate(cls):
            cx, cy = self._centres[px], self._centres[py]
            out[i, 0, cy - r : cy + r + 1, cx - r : cx + r + 1] = self._masks[s]
        return torch.from_numpy(out)
