"""Image splits of a factor dataset for the auto-encoders and decoders, and encoding them with a frozen encoder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from mtlens.data.base import FactorDataset
from mtlens.device import resolve_device
from mtlens.errors import MtlensError

RENDER_CHUNK = 512


class ImageSplit(Dataset):
    """Yields batches {x: images [B, C, H, W], factors: [B, K]} of a factor dataset's images at `indices`.

    With `cache=True` the images are rendered once and kept (float32, N x C x H x W x 4 bytes): decoders and
    auto-encoders see every image hundreds of times, and the procedural renderers are the slow part of a step
    on a subset (Shapes3D renders ~50 images/s per core). Without it, every batch is rendered on demand.
    """

    def __init__(self, dataset: FactorDataset, indices: Sequence[int] | np.ndarray, cache: bool = False) -> None:
        self.dataset = dataset
        self.indices = dataset.check_indices(indices)
        if len(self.indices) == 0:
            raise MtlensError(f"{dataset.name}: an image split needs at least one index")
        self.factors = dataset.factors(self.indices)
        self.images: torch.Tensor | None = None
        if cache:
            self.images = torch.cat([dataset.images(self.indices[s : s + RENDER_CHUNK])
                                     for s in range(0, len(self.indices), RENDER_CHUNK)])

    @classmethod
    def of(cls, split: Dataset, cache: bool = False) -> ImageSplit:
        """Returns the image split of a MultiTaskDataset built over a factor dataset (its `source` and `indices`)."""
        source, indices = getattr(split, "source", None), getattr(split, "indices", None)
        if not isinstance(source, FactorDataset) or indices is None:
            raise MtlensError("an image split needs a multi-task split over a factor dataset (with source and indices)")
        return cls(source, indices, cache=cache)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.dataset.image_shape)  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.indices)

    def x(self, rows: np.ndarray | Sequence[int]) -> torch.Tensor:
        """Returns the images [B, C, H, W] of the given rows of this split."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.images is not None:
            return self.images[torch.from_numpy(rows)]
        return self.dataset.images(self.indices[rows])

    def __getitems__(self, rows: Sequence[int]) -> dict[str, torch.Tensor]:
        rows_arr = np.asarray(rows, dtype=np.int64)
        return {"x": self.x(rows_arr), "factors": torch.from_numpy(self.factors[rows_arr])}

    def __getitem__(self, row: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([row]).items()}


@torch.no_grad()
def encode_split(encoder: nn.Module, images: ImageSplit, batch_size: int = 64,
                 device: str | torch.device = "auto") -> np.ndarray:
    """Returns the codes [N, d] (float32) of every image of the split, encoded in eval mode in batches."""
    if batch_size < 1:
        raise MtlensError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    was_training = encoder.training
    encoder.to(dev).eval()
    parts = []
    try:
        for start in range(0, len(images), batch_size):
            rows = np.arange(start, min(start + batch_size, len(images)))
            parts.append(encoder(images.x(rows).to(dev)).float().cpu())
    finally:
        encoder.train(was_training)
    codes = torch.cat(parts).numpy()
    if not np.isfinite(codes).all():
        raise MtlensError("the encoder returned NaN or inf codes; check its weights")
    return codes
