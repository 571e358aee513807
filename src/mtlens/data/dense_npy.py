"""NYU-v2 and CityScapes in the preprocessed layout of the MTL literature (MTAN, Liu et al. 2019; LibMTL 1.1.5).

Layout (LibMTL's `examples/nyu` and `examples/cityscapes` read exactly this):

    <root>/train/image/0.npy ... <root>/train/image/{N-1}.npy    float [H, W, 3] in [0, 1]
    <root>/train/label/{i}.npy     [H, W] class index, -1 = unlabelled (float or integer dtype)
    <root>/train/depth/{i}.npy     float [H, W, 1] (or [H, W]), 0 = no measurement
    <root>/train/normal/{i}.npy    float [H, W, 3] unit vectors, 0 = none            (NYU-v2 only)
    <root>/val/...                 the same for the validation images

NYU-v2: 795 train / 654 val images of 288 x 384, 13 classes, depth in metres, surface normals.
CityScapes: 2975 train / 500 val images of 128 x 256, 7 classes (`label/`; MTAN's own download names the
folder `label_7/`, also accepted), depth (MTAN's preprocessing: inverse depth, 0 = none); no normals.
The preprocessed sets have no separate test images: as in MTAN and LibMTL, `split="test"` reads `val/`.

Every file is checked when the dataset is built, before anything trains: the four folders hold the same
indices 0..N-1, every array has the expected shape, dtype and the image's height and width, and (with
`check="full"`, the default) its values are finite and in range. Each error names the file. The full check
reads the split once (NYU-v2 train: about 3 GB of float32 arrays); `check="headers"` reads only the .npy
headers when building and checks each batch's values when it is read, before it reaches a model.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtlens.data.base import Source
from mtlens.data.registry import BENCHMARKS
from mtlens.data.dense import DenseDataset, DenseTask, check_dense_values
from mtlens.data.paths import resolve_data_dir
from mtlens.errors import MtlensError

SPLIT_FOLDERS = {"train": "train", "val": "val", "test": "val"}
CHECKS = ("full", "headers")
_INDEX_FILE = re.compile(r"^(\d+)\.npy$")


@dataclass(frozen=True)
class NpyLayout:
    """A preprocessed dense set: its tasks, the folder(s) each modality may be stored in, its native size."""

    name: str
    title: str
    tasks: tuple[DenseTask, ...]
    folders: dict[str, tuple[str, ...]]  # "image" and each task name -> accepted folder names, first preferred
    native_size: tuple[int, int]


NYUV2 = NpyLayout(
    "nyuv2", "NYU-v2 (preprocessed, MTAN / LibMTL layout)",
    (DenseTask("segmentation", "segmentation", 13), DenseTask("depth", "depth"), DenseTask("normal", "normal")),
    {"image": ("image",), "segmentation": ("label",), "depth": ("depth",), "normal": ("normal",)},
    (288, 384),
)
CITYSCAPES = NpyLayout(
    "cityscapes", "CityScapes (preprocessed, MTAN / LibMTL layout)",
    (DenseTask("segmentation", "segmentation", 7), DenseTask("depth", "depth")),
    {"image": ("image",), "segmentation": ("label", "label_7"), "depth": ("depth",)},
    (128, 256),
)


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Returns (shape, dtype) of a .npy file without reading its data; raises a one-line error if unreadable."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise MtlensError(f"{path}: not a readable .npy array ({str(err).splitlines()[0]}); re-extract the dataset") from None
    return tuple(arr.shape), arr.dtype


def _read(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise MtlensError(f"{path}: not a readable .npy array ({str(err).splitlines()[0]}); re-extract the dataset") from None


class NpyDenseDataset(DenseDataset):
    """One split of a preprocessed dense set (NYU-v2, CityScapes) read from per-image .npy files."""

    test_is_val = True

    def __init__(self, layout: NpyLayout, data_dir: str | os.PathLike[str] | None = None, split: str = "train",
                 check: str = "full", resize: tuple[int, int] | None = None) -> None:
        if split not in SPLIT_FOLDERS:
            raise MtlensError(f"{layout.name}: unknown split {split!r}; choose one of {', '.join(SPLIT_FOLDERS)}")
        if check not in CHECKS:
            raise MtlensError(f"{layout.name}: check must be one of {', '.join(CHECKS)}, got {check!r}")
        self.layout, self.name, self.tasks, self.split = layout, layout.name, layout.tasks, split
        self.resize = None if resize is None else (int(resize[0]), int(resize[1]))
        root = self._root(layout, data_dir)
        split_dir = root / SPLIT_FOLDERS[split]
        if not split_dir.is_dir():
            raise MtlensError(f"{layout.name}: split folder {str(split_dir)!r} is missing; expected {root}/train and {root}/val")
        self.folders = {m: self._folder(split_dir, m, names) for m, names in layout.folders.items()}
        self.indices = self._indices()
        self.image_size = self._check_headers()
        if check == "full":
            for i in range(len(self)):
                self._arrays(i)
        self.source = Source("official", f"{layout.title}: {split_dir}")

    @staticmethod
    def _root(layout: NpyLayout, data_dir: str | os.PathLike[str] | None) -> Path:
        root = resolve_data_dir(data_dir)
        if root is None:
            raise MtlensError(f"{layout.name} needs its preprocessed folders: pass data_dir (or set MTLENS_DATA) to the "
                              f"folder holding train/ and val/ (or a {layout.name}/ folder with them)")
        return root / layout.name if not (root / "train").is_dir() and (root / layout.name).is_dir() else root

    def _folder(self, split_dir: Path, modality: str, names: tuple[str, ...]) -> Path:
        for name in names:
            if (split_dir / name).is_dir():
                return split_dir / name
        raise MtlensError(f"{self.name}: folder {split_dir / names[0]} is missing (the {modality} of each image, "
                          f"as {', '.join(n + '/' for n in names)})")

    def _indices(self) -> np.ndarray:
        """Returns 0..N-1 after checking every modality folder holds {i}.npy for each of them."""
        image_dir = self.folders["image"]
        found = sorted(int(m.group(1)) for m in map(_INDEX_FILE.match, os.listdir(image_dir)) if m)
        if not found:
            raise MtlensError(f"{image_dir}: no <index>.npy files; expected 0.npy, 1.npy, ...")
        gaps = sorted(set(range(found[-1] + 1)) - set(found))
        if gaps:
            raise MtlensError(f"{image_dir}/{gaps[0]}.npy is missing (the images must be numbered 0..{found[-1]})")
        for modality, folder in self.folders.items():
            names = set(os.listdir(folder))
            missing = next((i for i in found if f"{i}.npy" not in names), None)
            if missing is not None:
                raise MtlensError(f"{folder}/{missing}.npy is missing: every image needs its {modality} file")
        return np.asarray(found, dtype=np.int64)

    def _file(self, modality: str, index: int) -> Path:
        return self.folders[modality] / f"{int(index)}.npy"

    def _check_headers(self) -> tuple[int, int]:
        """Returns the image (H, W) after checking every file's shape and dtype against its image."""
        size: tuple[int, int] | None = None
        for i in self.indices:
            path = self._file("image", i)
            shape, dtype = _header(path)
            if len(shape) != 3 or shape[2] != 3 or dtype.kind != "f":
                raise MtlensError(f"{path}: image has shape {shape} and dtype {dtype}, expected float [H, W, 3]")
            if size is None:
                size = shape[:2]
            elif shape[:2] != size:
                raise MtlensError(f"{path}: image is {shape[0]} x {shape[1]}, the others are {size[0]} x {size[1]}")
            for task in self.tasks:
                self._check_target_header(task, i, size, path)
        assert size is not None
        return (int(size[0]), int(size[1]))

    def _check_target_header(self, task: DenseTask, index: int, size: tuple[int, int], image: Path) -> None:
        path = self._file(task.name, index)
        shape, dtype = _header(path)
        allowed = {"segmentation": ((),), "depth": ((), (1,)), "normal": ((3,),)}[task.kind]
        kinds = "fiu" if task.kind == "segmentation" else "f"
        if shape[:2] != size or shape[2:] not in allowed or dtype.kind not in kinds:
            want = " or ".join(str(tuple(size) + a) for a in allowed)
            what = "number" if task.kind == "segmentation" else "float"
            if len(shape) >= 2 and shape[:2] != size:
                raise MtlensError(f"{path}: {task.name} is {shape[0]} x {shape[1]} but its image {image} is {size[0]} x {size[1]}")
            raise MtlensError(f"{path}: {task.name} has shape {shape} and dtype {dtype}, expected {what} {want}")

    def _arrays(self, row: int) -> dict[str, np.ndarray]:
        """Returns the checked arrays of one image: image [3, H, W] and each task's target."""
        index = self.indices[row]
        path = self._file("image", index)
        image = _read(path)
        check_dense_values("image", image, path)
        out = {"x": np.moveaxis(image, -1, 0).astype(np.float32)}
        for task in self.tasks:
            path = self._file(task.name, index)
            y = _read(path)
            check_dense_values(task.kind, y, path, task.num_classes)
            if task.kind == "segmentation":
                out[task.name] = y.astype(np.int64)
            elif task.kind == "depth":
                out[task.name] = y.reshape(1, *y.shape[:2]).astype(np.float32)
            else:
                out[task.name] = np.moveaxis(y, -1, 0).astype(np.float32)
        return out

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        arrays = [self._arrays(int(r)) for r in rows]
        return {k: torch.from_numpy(np.stack([a[k] for a in arrays])) for k in arrays[0]} if arrays else {}


@BENCHMARKS.register("nyuv2", aliases=("nyu", "nyu-v2", "nyu_v2"))
def nyuv2(split: str = "train", data_dir: str | os.PathLike[str] | None = None, check: str = "full",
          resize: tuple[int, int] | None = None) -> NpyDenseDataset:
    """Returns one split of preprocessed NYU-v2 (segmentation 13 classes, depth, normals; 288 x 384)."""
    return NpyDenseDataset(NYUV2, data_dir, split, check, resize)


@BENCHMARKS.register("cityscapes", aliases=("city",))
def cityscapes(split: str = "train", data_dir: str | os.PathLike[str] | None = None, check: str = "full",
               resize: tuple[int, int] | None = None) -> NpyDenseDataset:
    """Returns one split of preprocessed CityScapes (segmentation 7 classes, depth; 128 x 256)."""
    return NpyDenseDataset(CITYSCAPES, data_dir, split, check, resize)
