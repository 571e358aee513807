"""The dense multi-task contract: per-pixel tasks (segmentation, depth, surface normals) on images.

A dense dataset is a torch Dataset whose batches are dicts: `x` float32 [B, 3, H, W] in [0, 1] and `targets`
{task name: tensor}, with the conventions of the preprocessed NYU-v2 / CityScapes sets of the MTL literature
(MTAN, LibMTL): segmentation int64 [B, H, W] with `IGNORE_INDEX` (-1) where unlabelled; depth float32
[B, 1, H, W] with 0 where there is no measurement; normals float32 [B, 3, H, W], unit vectors, the zero vector
where there is none. Datasets with known factors add `factors` int64 [B, K]. Batches are assembled whole
(`__getitems__`), so `mtlens.data.multitask.make_loader` and the Trainer take them as they are.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from mtlens.data.base import Source
from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError

DENSE_KINDS = ("segmentation", "depth", "normal")
IGNORE_INDEX = -1
#: Normal components may exceed 1 by this much (resampled unit vectors).
NORMAL_SLACK = 1e-3
IMAGE_SLACK = 1e-4


@dataclass(frozen=True)
class DenseTask:
    """One per-pixel task: its name, kind (segmentation, depth, normal) and number of classes (segmentation)."""

    name: str
    kind: str
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in DENSE_KINDS:
            raise MtlensError(f"dense task {self.name!r}: unknown kind {self.kind!r}; choose one of {', '.join(DENSE_KINDS)}")
        if (self.kind == "segmentation") != (self.num_classes is not None):
            raise MtlensError(f"dense task {self.name!r}: num_classes is set for segmentation tasks only (>= 2)")
        if self.num_classes is not None and self.num_classes < 2:
            raise MtlensError(f"dense task {self.name!r}: a segmentation task needs num_classes >= 2, got {self.num_classes}")

    @property
    def channels(self) -> int:
        """Returns the number of output channels a head predicts for this task."""
        return {"segmentation": self.num_classes or 0, "depth": 1, "normal": 3}[self.kind]

    @property
    def spec(self) -> TaskSpec:
        """Returns the TaskSpec the Trainer names its measures by (multiclass for segmentation, else regression)."""
        if self.kind == "segmentation":
            return TaskSpec(self.name, "multiclass", self.num_classes)
        return TaskSpec(self.name, "regression")


def check_dense_values(kind: str, array: np.ndarray, where: str | Path, num_classes: int | None = None) -> None:
    """Raises a one-line error naming `where` unless `array` holds valid values for a modality of `kind`.

    kind: "image" (finite, in [0, 1]), "segmentation" (integers in -1..num_classes-1), "depth" (finite, >= 0;
    0 = no measurement), "normal" (finite, components in [-1, 1]).
    """
    if kind == "segmentation":
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise MtlensError(f"{where}: labels contain NaN or inf; use {IGNORE_INDEX} for unlabelled pixels")
        if array.dtype.kind == "f" and not np.all(array == np.round(array)):
            raise MtlensError(f"{where}: labels must be whole numbers (class indices), found fractional values")
        lo, hi = (array.min(), array.max()) if array.size else (0, 0)
        if lo < IGNORE_INDEX or hi >= (num_classes or 0):
            raise MtlensError(
                f"{where}: labels range {int(lo)}..{int(hi)}, expected {IGNORE_INDEX} (unlabelled) or 0..{(num_classes or 1) - 1}"
            )
        return
    if not np.all(np.isfinite(array)):
        raise MtlensError(f"{where}: {kind} contains NaN or inf; mark missing pixels with 0, not NaN")
    if not array.size:
        return
    lo, hi = float(array.min()), float(array.max())
    if kind == "image" and (lo < -IMAGE_SLACK or hi > 1 + IMAGE_SLACK):
        raise MtlensError(f"{where}: image values range {lo:.4g}..{hi:.4g}, expected floats in [0, 1]")
    if kind == "depth" and lo < 0:
        raise MtlensError(f"{where}: depth has negative values (min {lo:.4g}); depth is >= 0 with 0 = no measurement")
    if kind == "normal" and (lo < -1 - NORMAL_SLACK or hi > 1 + NORMAL_SLACK):
        raise MtlensError(f"{where}: normal components range {lo:.4g}..{hi:.4g}, expected unit vectors in [-1, 1]")


class DenseDataset(Dataset):
    """Base of the dense multi-task datasets; subclasses set `name`, `tasks`, `source`, `image_size` and `_load`."""

    name: str
    tasks: tuple[DenseTask, ...]
    source: Source
    image_size: tuple[int, int]  # (H, W) of the stored images
    #: (H, W) the batches are resized to, or None for the stored size.
    resize: tuple[int, int] | None = None

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _load(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Returns {"x", task names..., optional "factors"} for validated rows, at the stored size."""

    @property
    def task_specs(self) -> list[TaskSpec]:
        """Returns the TaskSpec of every task (what a MultiTaskModel is built with)."""
        return [t.spec for t in self.tasks]

    @property
    def output_size(self) -> tuple[int, int]:
        """Returns the (H, W) of the batches."""
        return self.resize or self.image_size

    def _rows(self, rows: Sequence[int]) -> np.ndarray:
        arr = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self)
        if arr.size and (arr.min() < -n or arr.max() >= n):
            raise MtlensError(f"{self.name}: row {int(arr[(arr < -n) | (arr >= n)][0])} is out of range for {n} images")
        return np.where(arr < 0, arr + n, arr)

    def __getitems__(self, rows: Sequence[int]) -> dict[str, object]:
        """Returns the batch of `rows`: {"x", "targets": {task: tensor}, and "factors" when known}."""
        parts = self._load(self._rows(rows))
        batch: dict[str, object] = {"x": parts["x"], "targets": {t.name: parts[t.name] for t in self.tasks}}
        if "factors" in parts:
            batch["factors"] = parts["factors"]
        if self.resize is not None and tuple(self.resize) != tuple(self.image_size):
            batch = resize_batch(batch, self.tasks, self.resize)
        return batch

    def __getitem__(self, row: int) -> dict[str, object]:
        batch = self.__getitems__([row])
        return {"x": batch["x"][0], "targets": {k: v[0] for k, v in batch["targets"].items()},  # type: ignore[index, union-attr]
                **({"factors": batch["factors"][0]} if "factors" in batch else {})}  # type: ignore[index]


def resize_batch(batch: Mapping[str, object], tasks: Sequence[DenseTask], size: tuple[int, int]) -> dict[str, object]:
    """Returns the batch resized to `size` (H, W): the image bilinearly, every target by nearest neighbour.

    Nearest neighbour keeps labels whole, keeps the 0 of missing depth and the zero vector of missing normals
    exact (bilinear would blend valid and invalid pixels), and keeps normals unit length.
    """
    out = dict(batch)
    out["x"] = F.interpolate(batch["x"], size=size, mode="bilinear", align_corners=False)  # type: ignore[arg-type]
    targets = {}
    for t in tasks:
        y = batch["targets"][t.name]  # type: ignore[index]
        if t.kind == "segmentation":
            targets[t.name] = F.interpolate(y[:, None].float(), size=size, mode="nearest")[:, 0].long()
        else:
            targets[t.name] = F.interpolate(y, size=size, mode="nearest")
    out["targets"] = targets
    return out
