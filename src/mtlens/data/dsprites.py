"""dSprites: 737,280 binary 64 x 64 images of a square, ellipse or heart over a full factor grid.

Factors (official order and names): color (1), shape (3: square, ellipse, heart), scale (6: 0.5..1),
orientation (40: 0..2 pi, both ends included), posX (32: 0..1), posY (32: 0..1); the flat index of an image
is its C-order index over these sizes, as in the official file.

`DSprites(data_dir)` reads the official `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz` when it is found
in the data directory (see `mtlens.data.paths`; reading is lazy, see `mtlens.data.dsprites_file`), and
otherwise draws the same grid procedurally on demand (`mtlens.data.dsprites_render`, calibrated against real
dSprites frames); `source` says which.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mtlens.data.base import FactorDataset, Source
from mtlens.data.dsprites_file import DSpritesFile
from mtlens.data.dsprites_render import FACTOR_NAMES, FACTOR_SIZES, FACTOR_VALUES, IMAGE_SIZE, SHAPE_NAMES, MaskTable
from mtlens.data.paths import find_file, resolve_data_dir, where
from mtlens.data.registry import FACTOR_DATASETS
from mtlens.errors import MtlensError

OFFICIAL_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
RENDERER_CHOICES = ("auto", "procedural", "off")


@functools.lru_cache(maxsize=1)
def shape_masks() -> MaskTable:
    """Returns the mask table of the procedural renderer, built once per process (~0.5 s, ~8 MB)."""
    return MaskTable()


@FACTOR_DATASETS.register("dsprites")
class DSprites(FactorDataset):
    """dSprites from the official file when present, else drawn procedurally (see the module docstring).

    `renderer`: None or "auto" (the official file if found in `data_dir`, else the renderer), "procedural"
    (always the renderer, even when the file exists) or "off" (the official file or an error).
    """

    name = "dsprites"
    factor_names = FACTOR_NAMES
    value_names = {"shape": SHAPE_NAMES}
    image_shape = (1, IMAGE_SIZE, IMAGE_SIZE)

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        renderer: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        mode = "auto" if renderer is None else str(renderer).strip().lower()
        if mode not in RENDERER_CHOICES:
            raise MtlensError(f"dsprites: unknown renderer {renderer!r}; choose one of: {', '.join(RENDERER_CHOICES)}")
        folder = resolve_data_dir(data_dir)
        path = find_file(folder, [OFFICIAL_FILE]) if mode != "procedural" else None
        if path is not None:
            self._init_file(DSpritesFile(path, expected_sizes=FACTOR_SIZES, cache_dir=cache_dir))
            return
        if mode == "off":
            raise MtlensError(f"dsprites: {OFFICIAL_FILE} not found {where(folder)}; add it there or use renderer='auto'")
        self._file: DSpritesFile | None = None
        self.factor_sizes = FACTOR_SIZES
        self._values = FACTOR_VALUES
        if mode == "procedural":
            reason = "procedural dSprites: requested with renderer='procedural'"
        else:
            reason = f"procedural dSprites: official file not found {where(folder)}"
        self.source = Source("renderer", reason)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], expected_sizes: Sequence[int] | None = FACTOR_SIZES,
                  cache_dir: str | os.PathLike[str] | None = None) -> DSprites:
        """Returns the dataset read from an official-format npz at `path` (expected_sizes=None: any complete grid)."""
        self = cls.__new__(cls)
        self._init_file(DSpritesFile(Path(path), expected_sizes=expected_sizes, cache_dir=cache_dir))
        return self

    def _init_file(self, file: DSpritesFile) -> None:
        self._file = file
        self.factor_sizes = file.factor_sizes
        self._values = file.factor_values
        self.source = Source("official", str(file.path))

    @property
    def factor_value_table(self) -> tuple[np.ndarray, ...]:
        return self._values

    def _render(self, indices: np.ndarray) -> torch.Tensor:
        if self._file is not None:
            imgs = self._file.read(indices)
        else:
            classes = np.stack(np.unravel_index(indices, self.factor_sizes), axis=1)
            imgs = shape_masks().render(classes)
        return torch.from_numpy(imgs).unsqueeze(1)
