"""Shapes3D (3D Shapes, Burgess & Kim 2018): 480,000 RGB 64x64 images of one object in a room, six factors.

Facts from the deepmind/3d-shapes README: floor, wall and object hue take 10 values each, linearly spaced in
[0, 1]; scale 8 values linearly spaced in [0.75, 1.25]; shape 4 values (0..3: cube, cylinder, sphere,
capsule); orientation 15 values linearly spaced in [-30, 30] degrees. `3dshapes.h5` holds `images`
(480000, 64, 64, 3) uint8 and `labels` (480000, 6) float64, stored one factor at a time with orientation
fastest, i.e. C order over (floor_hue, wall_hue, object_hue, scale, shape, orientation).

`Shapes3D(data_dir)` reads the official file when it is found (only the requested rows, sorted, in chunks),
else renders the images with the procedural ray-caster of `shapes3d_render`.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch

from mtlens.data.base import FactorDataset, Source
from mtlens.data.files import require_array, require_keys
from mtlens.data.paths import find_file, resolve_data_dir, where
from mtlens.data.registry import FACTOR_DATASETS
from mtlens.data.shapes3d_render import NUM_CLASSES, SKY_RGB, Scene, coverage, hue_rgb
from mtlens.errors import MtlensError

FILE_NAMES = ("3dshapes.h5",)
FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
NUM_IMAGES = 480_000
IMAGE_HW = 64
# The real frames (3dshapes.gif) show hues at exactly k / 10 (e.g. cyan 0.5, magenta 0.9, orange 0.1), so the
# ten hue values are rendered as hue k / 10: ten distinct colours, red never repeated at both ends.
RENDER_HUES = np.arange(10) / 10.0
READ_GAP = 4  # rows between two requested rows that are still read in one slice
READ_SPAN = 1024  # most requested rows per slice read: bounds the memory of one read


def readme_value_table() -> tuple[np.ndarray, ...]:
    """Returns the README's physical values of each factor, in factor order."""
    hue = np.linspace(0.0, 1.0, 10)
    return (
        hue,
        hue.copy(),
        hue.copy(),
        np.linspace(0.75, 1.25, 8),
        np.arange(4, dtype=np.float64),
        np.linspace(-30.0, 30.0, 15),
    )


def _grid_check_indices() -> np.ndarray:
    """Returns the rows checked when a file is opened: each factor's sweep from index 0, plus fixed random rows."""
    strides = np.cumprod((1,) + FACTOR_SIZES[::-1])[::-1][1:]
    sweeps = [np.arange(size) * stride for size, stride in zip(FACTOR_SIZES, strides)]
    extra = np.random.default_rng(20180601).integers(0, NUM_IMAGES, size=64)
    return np.unique(np.concatenate(sweeps + [extra, [NUM_IMAGES - 1]])).astype(np.int64)


class Shapes3DFile:
    """Reader of the official `3dshapes.h5`; checks keys, shapes, dtypes and the label grid when opened."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._h5: h5py.File | None = None
        try:
            with h5py.File(self.path, "r") as f:
                self.value_table = self._validate(f)
        except OSError as err:
            raise MtlensError(f"{self.path}: cannot be read as HDF5 ({err}); is this the official 3dshapes.h5?") from None

    def _validate(self, f: object) -> tuple[np.ndarray, ...]:
        """Returns the per-factor value table read from the labels, after checking the file's layout."""
        keys = [k for k in f.keys()]  # type: ignore[attr-defined]
        require_keys(self.path, keys, ("images", "labels"))
        images, labels = f["images"], f["labels"]  # type: ignore[index]
        require_array(self.path, "images", (NUM_IMAGES, IMAGE_HW, IMAGE_HW, 3), "u", images.shape, images.dtype)
        if images.dtype != np.uint8:
            raise MtlensError(f"{self.path}: 'images' has dtype {images.dtype}, expected uint8")
        require_array(self.path, "labels", (NUM_IMAGES, len(FACTOR_SIZES)), "f", labels.shape, labels.dtype)
        rows = _grid_check_indices()
        got = np.asarray(labels[rows], dtype=np.float64)
        cls = np.stack(np.unravel_index(rows, FACTOR_SIZES), axis=1)
        # Each factor's values are read from the row where only that factor moves away from index 0.
        table = []
        for k, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES)):
            others_zero = (np.delete(cls, k, axis=1) == 0).all(axis=1)
            vals = np.full(size, np.nan)
            vals[cls[others_zero, k]] = got[others_zero, k]
            if not np.all(np.diff(vals) > 0):
                raise MtlensError(
                    f"{self.path}: labels of {name!r} along its sweep are {np.round(vals, 4).tolist()}, expected "
                    f"{size} increasing values (rows in C order over {', '.join(FACTOR_NAMES)})"
                )
            table.append(vals)
        expected = np.stack([table[k][cls[:, k]] for k in range(len(FACTOR_SIZES))], axis=1)
        bad = ~np.isclose(got, expected, rtol=0.0, atol=1e-6).all(axis=1)
        if bad.any():
            row = int(rows[bad][0])
            raise MtlensError(
                f"{self.path}: labels at row {row} are {np.round(got[bad][0], 4).tolist()}, expected "
                f"{np.round(expected[bad][0], 4).tolist()} (rows must be in C order over {', '.join(FACTOR_NAMES)})"
            )
        return tuple(table)

    def _file(self) -> object:
        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        return self._h5

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Returns the uint8 images [N, 64, 64, 3] at `indices` (any order, repeats allowed)."""
        uniq, inverse = np.unique(indices, return_inverse=True)
        images = self._file()["images"]  # type: ignore[index]
        out = np.empty((len(uniq), IMAGE_HW, IMAGE_HW, 3), dtype=np.uint8)
        # h5py fancy indexing builds its selection row by row and is ~50x slower than plain slices, so the
        # sorted rows are read as slices: runs of nearby rows (gap <= READ_GAP) share one bounded read.
        breaks = np.flatnonzero((np.diff(uniq) > READ_GAP) | (np.arange(1, len(uniq)) % READ_SPAN == 0)) + 1
        for part, where in zip(np.split(uniq, breaks), np.split(np.arange(len(uniq)), breaks)):
            if len(part) == 0:
                continue
            lo, hi = int(part[0]), int(part[-1]) + 1
            block = images[lo:hi]
            out[where] = block if hi - lo == len(part) else block[part - lo]
        return out[inverse.reshape(-1)]

    def close(self) -> None:
        """Closes the HDF5 handle (it reopens on the next read)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __getstate__(self) -> dict[str, object]:
        # h5py handles cannot cross process boundaries (DataLoader workers); each process reopens its own.
        state = dict(self.__dict__)
        state["_h5"] = None
        return state


class Shapes3DRenderer:
    """Renders Shapes3D images on demand; caches each (scale, shape, orientation) pixel map on first use."""

    def __init__(self, scene: Scene | None = None) -> None:
        self.scene = scene or Scene()
        if self.scene.image_size != IMAGE_HW:
            raise MtlensError(f"shapes3d: the renderer's image_size must be {IMAGE_HW}, got {self.scene.image_size}")
        self._scales = readme_value_table()[3]
        self._orientations = readme_value_table()[5]
        self._num_combos = FACTOR_SIZES[3] * FACTOR_SIZES[4] * FACTOR_SIZES[5]
        self._cache = np.zeros((self._num_combos, NUM_CLASSES, IMAGE_HW, IMAGE_HW), dtype=np.float32)
        self._filled = np.zeros(self._num_combos, dtype=bool)
        self._hues = torch.from_numpy(hue_rgb(RENDER_HUES)).float()  # [10, 3]
        self._sky = torch.tensor(SKY_RGB, dtype=torch.float32)

    def _fill(self, combos: np.ndarray) -> None:
        for c in combos[~self._filled[combos]]:
            scale, shape, ori = np.unravel_index(int(c), FACTOR_SIZES[3:])
            self._cache[c] = coverage(self.scene, int(shape), float(self._scales[scale]), float(self._orientations[ori]))
            self._filled[c] = True

    def precompute(self) -> None:
        """Fills the whole cache (480 pixel maps, about 31 MB) so later batches are lookups only."""
        self._fill(np.arange(self._num_combos))

    def render(self, factors: np.ndarray) -> torch.Tensor:
        """Returns float32 images [N, 3, 64, 64] in [0, 1] for factor value indices [N, 6]."""
        combos = np.ravel_multi_index(tuple(factors[:, 3:].T), FACTOR_SIZES[3:])
        self._fill(np.unique(combos))
        cov = torch.from_numpy(self._cache)[torch.from_numpy(combos)]  # [N, 4, H, W]
        f = torch.from_numpy(factors)
        colours = torch.stack(
            [self._sky.expand(len(f), 3), self._hues[f[:, 0]], self._hues[f[:, 1]], self._hues[f[:, 2]]], dim=1
        )  # [N, 4 classes, 3]: sky, floor, wall, object (the class order of shapes3d_render)
        return torch.einsum("nchw,nck->nkhw", cov, colours).clamp_(0.0, 1.0)


@FACTOR_DATASETS.register("shapes3d", aliases=("3dshapes",))
class Shapes3D(FactorDataset):
    """Shapes3D from the official `3dshapes.h5` in `data_dir` when present, else from the procedural renderer."""

    name = "shapes3d"
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    image_shape = (3, IMAGE_HW, IMAGE_HW)
    value_names = {"shape": SHAPE_NAMES}

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, scene: Scene | None = None) -> None:
        root = resolve_data_dir(data_dir)
        path = find_file(root, FILE_NAMES)
        self._file: Shapes3DFile | None = None
        self._renderer: Shapes3DRenderer | None = None
        if path is not None:
            self._file = Shapes3DFile(path)
            self._table = self._file.value_table
            self.source = Source("official", str(path))
        else:
            self._renderer = Shapes3DRenderer(scene)
            self._table = readme_value_table()
            self.source = Source("renderer", f"procedural Shapes3D ray-caster: 3dshapes.h5 not found {where(root)}")

    @property
    def factor_value_table(self) -> tuple[np.ndarray, ...]:
        return self._table

    @property
    def renderer(self) -> Shapes3DRenderer | None:
        """Returns the procedural renderer, or None when images come from the official file."""
        return self._renderer

    def _render(self, indices: np.ndarray) -> torch.Tensor:
        if self._file is not None:
            raw = torch.from_numpy(self._file.read(indices))
            return raw.permute(0, 3, 1, 2).float().div_(255.0)
        assert self._renderer is not None
        factors = np.stack(np.unravel_index(indices, FACTOR_SIZES), axis=1).astype(np.int64)
        return self._renderer.render(factors)
