"""MPI3D (toy, realistic, real, complex): a robot arm moving a coloured object, 7 factors, 64x64 RGB.

Facts from rr-learning/disentanglement_dataset (README): 1,036,800 images over object_color (white, green,
red, blue, brown, olive), object_shape (cone, cube, cylinder, hexagonal, pyramid, sphere), object_size (small,
large), camera_height (top, center, bottom), background_color (purple, sea green, salmon), horizontal_axis
(40), vertical_axis (40); each file holds `images` (N, 64, 64, 3) uint8 in C order over those sizes
(`array.reshape([6,6,2,3,3,40,40,64,64,3])`). MPI3D-complex (real-world objects) has 460,800 images with 4
colours and 4 shapes.

With the official `.npz` in the data directory its images are memory-mapped (see `mtlens.data.npz`: in place
when stored, else from a cache decompressed once); without it a procedural stand-in (mpi3d_render) draws the
same factor grid and says so in `name` and `source`.
The files carry no physical factor values, so `factor_value_table` gives each value's index as a float.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtlens.data.base import FactorDataset, Source
from mtlens.data.npz import NpzArchive
from mtlens.data.mpi3d_render import REAL_PALETTE, TOY_PALETTE, ArmSceneRenderer, Palette
from mtlens.data.paths import find_file, resolve_data_dir, where
from mtlens.data.registry import FACTOR_DATASETS
from mtlens.errors import MtlensError

FACTOR_NAMES = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
IMAGE_SHAPE = (64, 64, 3)
KEY = "images"

_TOY_COLOURS = ("white", "green", "red", "blue", "brown", "olive")
_TOY_SHAPES = ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere")
# lit-side colours of the objects as they appear on the toy sample sheet (RGB 0..255)
_RGB = {
    "white": (225, 225, 225),
    "green": (40, 150, 40),
    "red": (215, 10, 10),
    "blue": (45, 115, 215),
    "brown": (95, 58, 40),
    "olive": (125, 124, 52),
    "yellow": (225, 190, 40),
}


@dataclass(frozen=True)
class Variant:
    """One MPI3D file: its name, factor sizes, value names, and how its stand-in is drawn."""

    name: str
    filename: str
    factor_sizes: tuple[int, ...]
    colours: tuple[str, ...]
    shapes: tuple[str, ...]  # names of the real objects
    drawn_shapes: tuple[str, ...]  # mpi3d_shapes silhouettes that stand in for them
    palette: Palette


VARIANTS: dict[str, Variant] = {
    "toy": Variant("mpi3d_toy", "mpi3d_toy.npz", (6, 6, 2, 3, 3, 40, 40), _TOY_COLOURS, _TOY_SHAPES, _TOY_SHAPES, TOY_PALETTE),
    "realistic": Variant(
        "mpi3d_realistic", "mpi3d_realistic.npz", (6, 6, 2, 3, 3, 40, 40), _TOY_COLOURS, _TOY_SHAPES, _TOY_SHAPES, REAL_PALETTE
    ),
    "real": Variant("mpi3d_real", "mpi3d_real.npz", (6, 6, 2, 3, 3, 40, 40), _TOY_COLOURS, _TOY_SHAPES, _TOY_SHAPES, REAL_PALETTE),
    # colour and object names of MPI3D-complex as listed in the dataset's README (yellow, green, olive, red;
    # coffee-cup, tennis-ball, croissant, beer-cup); the stand-in draws simple silhouettes of those objects
    "complex": Variant(
        "mpi3d_complex",
        "real3d_complicated_shapes_ordered.npz",
        (4, 4, 2, 3, 3, 40, 40),
        ("yellow", "green", "olive", "red"),
        ("coffee-cup", "tennis-ball", "croissant", "beer-cup"),
        ("cup", "ball", "croissant", "beer_cup"),
        REAL_PALETTE,
    ),
}


@functools.lru_cache(maxsize=4)
def _renderer(variant: Variant) -> ArmSceneRenderer:
    """Returns the (shared, deterministic) stand-in renderer of a variant; building one takes about a second."""
    colours = np.array([_RGB[c] for c in variant.colours], dtype=np.float32) / 255.0
    nh, nv = variant.factor_sizes[5], variant.factor_sizes[6]
    return ArmSceneRenderer(variant.drawn_shapes, colours, variant.palette, nh=nh, nv=nv)


def check_images(path: Path, shape: tuple[int, ...], dtype: np.dtype, factor_sizes: tuple[int, ...]) -> None:
    """Raises unless an `images` array has shape (prod(factor_sizes), 64, 64, 3) and dtype uint8."""
    expected = (int(np.prod(factor_sizes)), *IMAGE_SHAPE)
    if tuple(shape) != expected:
        raise MtlensError(
            f"{path}: {KEY!r} has shape {tuple(shape)}, expected {expected} "
            f"(one 64x64 RGB image per factor combination {'x'.join(map(str, factor_sizes))}); is this the official file?"
        )
    if np.dtype(dtype) != np.uint8:
        raise MtlensError(f"{path}: {KEY!r} has dtype {np.dtype(dtype)}, expected uint8")


class MPI3D(FactorDataset):
    """MPI3D images with their 7 factors: the official file when present, else the procedural stand-in."""

    factor_names = FACTOR_NAMES

    def __init__(
        self,
        variant: str = "toy",
        data_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise MtlensError(f"unknown MPI3D variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
        self.variant = VARIANTS[variant]
        self.factor_sizes = self.variant.factor_sizes
        self.image_shape = (3, 64, 64)
        directory = resolve_data_dir(data_dir)
        path = find_file(directory, [self.variant.filename])
        self._images: np.ndarray | None = None
        if path is not None:
            with NpzArchive(path) as npz:
                head = npz.header(KEY)
                check_images(path, head.shape, head.dtype, self.factor_sizes)  # before decompressing 12.7 GB
                images = npz.map(KEY, cache_dir=cache_dir)
            self._images = images.array
            how = images.how
            self.name = self.variant.name
            self.source = Source("official", f"{path} ({how})")
        else:
            self.name = f"{self.variant.name} (stand-in)"
            self.source = Source(
                "stand-in",
                f"procedural MPI3D stand-in (arm-and-object scene), not the real MPI3D: "
                f"{self.variant.filename} not found {where(directory)}",
            )

    @property
    def is_stand_in(self) -> bool:
        """Returns True when images come from the procedural stand-in, not the official file."""
        return self._images is None

    @property
    def value_names(self) -> dict[str, tuple[str, ...]]:  # type: ignore[override]
        """Returns the README's names of the values of the five categorical factors (the axes are steps)."""
        v = self.variant
        names = (v.colours, v.shapes, ("small", "large"), ("top", "center", "bottom"), ("purple", "sea green", "salmon"))
        return dict(zip(self.factor_names, names))

    @property
    def factor_value_table(self) -> tuple[np.ndarray, ...]:
        # the official files store no physical values (angles, heights), only the grid order
        return tuple(np.arange(n, dtype=np.float64) for n in self.factor_sizes)

    def _render(self, indices: np.ndarray) -> torch.Tensor:
        if self._images is None:
            return _renderer(self.variant).render(self.factors(indices))
        # read in file order (fewer seeks on a memory map), then put back in the asked order
        order = np.argsort(indices, kind="stable")
        raw = np.empty((len(indices), *IMAGE_SHAPE), dtype=np.uint8)
        raw[order] = self._images[indices[order]]
        return torch.from_numpy(raw).permute(0, 3, 1, 2).float().div_(255.0)

    def describe(self) -> dict[str, object]:
        """Returns the base summary plus the variant and whether this is the stand-in."""
        out = super().describe()
        out["variant"] = self.variant.name
        out["stand_in"] = self.is_stand_in
        return out


for _key in VARIANTS:
    FACTOR_DATASETS.add(f"mpi3d_{_key}", functools.partial(MPI3D, _key))
