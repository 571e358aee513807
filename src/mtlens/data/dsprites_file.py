"""Reader for the official dSprites file `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`, read lazily.

The file holds `imgs` (737280, 64, 64) uint8 in {0, 1}, `latents_values` (737280, 6) float64 and
`latents_classes` (737280, 6) int64, rows in C order over the factor grid (1, 3, 6, 40, 32, 32).

The members are read through `mtlens.data.npz`: a STORED `imgs` is memory-mapped in place; a compressed one
(the official file is) is decompressed once into a bit-packed cache, (N, 512) uint8, 377 MB instead of 3 GB,
that later opens memory-map; a batch is unpacked on read.

Everything is checked before the images are read: keys, .npy headers (shape, dtype, C order, no pickles),
that the three arrays have the same length, that latents_classes is the complete grid in C order and
latents_values a function of it. The grid sizes are read from latents_classes (max + 1) and compared with
`expected_sizes` (the official grid by default); tests pass `expected_sizes=None` to read small files in
the official layout through exactly this code (a full-size test file takes ~10 s to compress, so that check
is a slow test).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtlens.data.dsprites_render import FACTOR_SIZES, IMAGE_SIZE
from mtlens.data.files import require_array
from mtlens.data.npz import MemberHeader, NpzArchive, unpack_rows
from mtlens.errors import MtlensError

KEYS = ("imgs", "latents_values", "latents_classes")
NUM_FACTORS = 6


class DSpritesFile:
    """The arrays of an official-format dSprites npz, validated; images read lazily by index.

    `expected_sizes`: the factor grid the file must hold (the official one by default; None accepts any
    complete grid of the six factors, for small files in the official layout).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        expected_sizes: Sequence[int] | None = FACTOR_SIZES,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(path)
        with NpzArchive(self.path) as npz:
            npz.require(KEYS)
            n = self._check_headers({key: npz.header(key) for key in KEYS})
            classes = npz.read("latents_classes")
            values = npz.read("latents_values")
            self.factor_sizes = self._check_grid(classes, n, expected_sizes)
            self.factor_values = self._value_table(classes, values)
            imgs = npz.map("imgs", binary=True, cache_dir=cache_dir)
        self._imgs = imgs.array
        self._packed = imgs.packed
        self.cache_path = imgs.cache_path
        self.storage = imgs.how

    # ------------------------------------------------------------------ checks
    def _check_headers(self, headers: dict[str, MemberHeader]) -> int:
        """Returns N after checking every array's shape, dtype and memory order."""
        imgs = headers["imgs"]
        require_array(self.path, "imgs", (None, IMAGE_SIZE, IMAGE_SIZE), "u", imgs.shape, imgs.dtype)
        if imgs.dtype != np.uint8:
            raise MtlensError(f"{self.path}: 'imgs' has dtype {imgs.dtype}, expected uint8")
        n = imgs.shape[0]
        for key, kind, want in (("latents_values", "f", np.float64), ("latents_classes", "iu", None)):
            h = headers[key]
            require_array(self.path, key, (None, NUM_FACTORS), kind, h.shape, h.dtype)
            if want is not None and h.dtype != want:
                raise MtlensError(f"{self.path}: {key!r} has dtype {h.dtype}, expected {np.dtype(want)}")
            if h.shape[0] != n:
                raise MtlensError(f"{self.path}: {key!r} has {h.shape[0]} rows but 'imgs' has {n}; the arrays must match")
        for key, h in headers.items():
            if h.fortran_order and len(h.shape) > 1:
                raise MtlensError(
                    f"{self.path}: {key!r} is stored in Fortran order; expected C order (the official layout)"
                )
        return n

    def _check_grid(self, classes: np.ndarray, n: int, expected: Sequence[int] | None) -> tuple[int, ...]:
        """Returns the grid sizes after checking that latents_classes is the complete grid in C order."""
        if n == 0 or classes.min() < 0:
            raise MtlensError(f"{self.path}: 'latents_classes' is empty or negative; expected value indices >= 0")
        sizes = tuple(int(s) for s in classes.max(axis=0) + 1)
        if int(np.prod(sizes, dtype=np.int64)) != n:
            raise MtlensError(
                f"{self.path}: 'latents_classes' spans the grid {sizes} ({int(np.prod(sizes))} cells) but the file has "
                f"{n} images; expected the complete grid"
            )
        want = np.unravel_index(np.arange(n), sizes)
        for k in range(NUM_FACTORS):
            bad = np.flatnonzero(classes[:, k] != want[k])
            if bad.size:
                raise MtlensError(
                    f"{self.path}: 'latents_classes' row {bad[0]} is {classes[bad[0]].tolist()}, expected "
                    f"{[int(w[bad[0]]) for w in want]}; rows must run over the grid in C order (last factor fastest)"
                )
        if expected is not None and sizes != tuple(expected):
            raise MtlensError(
                f"{self.path}: the factor grid is {sizes}, expected {tuple(expected)} (the official dSprites grid)"
            )
        return sizes

    def _value_table(self, classes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
        """Returns per factor its physical values, after checking each depends only on its own class."""
        strides = np.cumprod((self.factor_sizes[1:] + (1,))[::-1])[::-1]
        table = []
        for k, size in enumerate(self.factor_sizes):
            col = values[np.arange(size) * strides[k], k]
            # equal up to float noise (the official values repeat exactly; a stray ulp must not refuse the file)
            tol = 1e-9 * np.maximum(1.0, np.abs(col))
            bad = np.flatnonzero(np.abs(values[:, k] - col[classes[:, k]]) > tol[classes[:, k]])
            if bad.size or not np.isfinite(col).all():
                row = int(bad[0]) if bad.size else 0
                raise MtlensError(
                    f"{self.path}: 'latents_values' row {row}, factor {k} is {values[row, k]}, but class "
                    f"{classes[row, k]} has value {col[classes[row, k]]} elsewhere; values must follow latents_classes"
                )
            table.append(col.astype(np.float64))
        return tuple(table)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Returns float32 images [N, 64, 64] in {0, 1} for valid flat indices."""
        if self._packed:  # the cache held only 0/1 when it was built
            return unpack_rows(self._imgs, indices, (IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
        batch = np.asarray(self._imgs[indices])
        if batch.size and batch.max() > 1:
            bad = int(indices[int(np.flatnonzero(batch.reshape(len(batch), -1).max(axis=1) > 1)[0])])
            raise MtlensError(f"{self.path}: 'imgs' image {bad} has values above 1; expected binary images (0/1)")
        return batch.astype(np.float32)
