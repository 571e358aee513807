"""The factor-dataset contract: images with known generative factors on a finite grid.

Semantics follow disentanglement_lib's ground-truth data: factors are integer value indices, the flat index
of an image is the C-order index over `factor_sizes` (as in the official dSprites / Shapes3D / MPI3D files),
and `sample_factors` draws each factor independently and uniformly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

from mtlens.errors import MtlensError

RandomState = np.random.RandomState | np.random.Generator

# official: the dataset's own data (its files in the data directory, or an exact copy shipped with a dependency,
#   e.g. scikit-learn's UCI tables); numbers are comparable with published ones.
# renderer: the same factor grid drawn procedurally, calibrated against the real images (dSprites, Shapes3D).
# stand-in: something else in place of the real data (MPI3D's procedural scene, scikit-learn's 8x8 digits for
#   MNIST, a UCI set missing some tables); the code runs end to end, the numbers are not the paper's.
SourceKind = Literal["official", "renderer", "stand-in"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)


@dataclass(frozen=True)
class Source:
    """Where a dataset's data come from: its `kind` (one of SOURCE_KINDS) and a detail (file path, or why)."""

    kind: SourceKind
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            # a loader's bug, not a user's input
            raise ValueError(f"unknown source kind {self.kind!r}; use one of {', '.join(SOURCE_KINDS)}")

    @property
    def is_official(self) -> bool:
        """Returns whether the data are the dataset's own (not drawn, not a stand-in)."""
        return self.kind == "official"

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


class FactorDataset(ABC):
    """Images with known generative factors on a finite grid: the contract every factor dataset follows.

    Subclasses set `name`, `factor_names`, `factor_sizes`, `factor_value_table` (the physical value of each
    factor index), `image_shape` (C, H, W) and `source`, and implement `_render(indices)`; `value_names`
    names the values of categorical factors (e.g. {"shape": ("square", "ellipse", "heart")}).
    """

    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    image_shape: tuple[int, int, int]
    source: Source
    value_names: dict[str, tuple[str, ...]] = {}

    # ------------------------------------------------------------------ to implement
    @property
    @abstractmethod
    def factor_value_table(self) -> tuple[np.ndarray, ...]:
        """Returns, per factor, the float array of its physical values (length factor_sizes[k])."""

    @abstractmethod
    def _render(self, indices: np.ndarray) -> torch.Tensor:
        """Returns float images [N, C, H, W] in [0, 1] for validated flat indices."""

    # ------------------------------------------------------------------ the contract
    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def factor_index(self, name: str) -> int:
        """Returns the position of the factor called `name`."""
        try:
            return self.factor_names.index(name)
        except ValueError:
            raise MtlensError(
                f"unknown factor {name!r} for {self.name}; its factors are: {', '.join(self.factor_names)}"
            ) from None

    def check_indices(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """Returns `indices` as a 1-D int64 array, or raises if any is not an index of this dataset."""
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        arr = np.asarray(indices)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise MtlensError(f"{self.name}: indices must be 1-D, got shape {arr.shape}; pass a flat list of indices")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise MtlensError(f"{self.name}: indices must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
        n = len(self)
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            bad = int(arr[(arr < 0) | (arr >= n)][0])
            raise MtlensError(f"{self.name}: index {bad} is out of range; valid indices are 0..{n - 1}")
        return arr

    def check_factors(self, factors: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """Returns `factors` as an int64 [N, K] array, or raises if a value index is outside its factor."""
        arr = np.asarray(factors)
        if arr.ndim == 1 and arr.shape[0] == self.num_factors:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.num_factors:
            raise MtlensError(
                f"{self.name}: factors must have shape [N, {self.num_factors}] ({', '.join(self.factor_names)}), "
                f"got {arr.shape}"
            )
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise MtlensError(f"{self.name}: factors must be integer value indices, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
        sizes = np.asarray(self.factor_sizes)
        bad = (arr < 0) | (arr >= sizes)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise MtlensError(
                f"{self.name}: factor {self.factor_names[col]!r} has value index {arr[row, col]}, "
                f"valid are 0..{sizes[col] - 1}"
            )
        return arr

    def factors(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """Returns the factor value indices [N, K] (int64) of the images at `indices`."""
        idx = self.check_indices(indices)
        return np.stack(np.unravel_index(idx, self.factor_sizes), axis=1).astype(np.int64)

    def index_of(self, factors: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """Returns the flat indices [N] (int64) of the images with the given factor value indices."""
        arr = self.check_factors(factors)
        return np.ravel_multi_index(tuple(arr.T), self.factor_sizes).astype(np.int64)

    def factor_values(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """Returns the physical factor values [N, K] (float64) of the images at `indices`."""
        cls = self.factors(indices)
        table = self.factor_value_table
        return np.stack([np.asarray(table[k], dtype=np.float64)[cls[:, k]] for k in range(self.num_factors)], axis=1)

    def images(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Returns float32 images [N, C, H, W] in [0, 1] for the given flat indices."""
        return self._render(self.check_indices(indices))

    def sample_factors(self, n: int, rng: RandomState) -> np.ndarray:
        """Returns n factor rows [n, K], each factor drawn uniformly, in factor order (disentanglement_lib's order)."""
        if n < 0:
            raise MtlensError(f"{self.name}: cannot sample {n} factor rows; n must be >= 0")
        out = np.zeros((n, self.num_factors), dtype=np.int64)
        for k, size in enumerate(self.factor_sizes):
            out[:, k] = rng.randint(size, size=n) if isinstance(rng, np.random.RandomState) else rng.integers(size, size=n)
        return out

    def sample_observations_from_factors(self, factors: np.ndarray, rng: RandomState | None = None) -> torch.Tensor:
        """Returns the images [N, C, H, W] of the given factor rows (the grid is deterministic, rng is unused)."""
        return self.images(self.index_of(factors))

    def describe(self) -> dict[str, object]:
        """Returns a JSON-able summary: name, factors with sizes, value ranges and names, image shape, source."""
        table = self.factor_value_table
        return {
            "name": self.name,
            "num_images": len(self),
            "image_shape": list(self.image_shape),
            "factors": [
                {"name": n, "size": s, "min": float(np.min(t)), "max": float(np.max(t))}
                | ({"value_names": list(self.value_names[n])} if n in self.value_names else {})
                for n, s, t in zip(self.factor_names, self.factor_sizes, table)
            ],
            "source": str(self.source),
        }

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return f"{type(self).__name__}({sizes}; {self.source})"
