"""Reader for the official dSprites file `dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`, read lazily.

The file holds `imgs` (737280, 64, 64) uint8 in {0, 1}, `latents_values` (737280, 6) float64 and
`latents_classes` (737280, 6) int64, rows in C order over the factor grid (1, 3, 6, 40, 32, 32).

`np.load` cannot memory-map a member of an npz, and reading `imgs` whole takes 3 GB, so:
- a STORED (uncompressed) `imgs` member is memory-mapped in place, at the offset of its data (zip local
  header + .npy header);
- a DEFLATED member (the official file is one) is decompressed once, streamed in chunks, into a cache
  `<file stem>.imgs-packed.npy` next to the file (or in $MTLENS_CACHE, else ~/.cache/mtlens, when that
  folder is read-only): the images bit-packed, (N, 512) uint8, 377 MB instead of 3 GB. Later opens
  memory-map the cache; a batch is unpacked on read.

Everything is checked before anything is read: keys, .npy headers (shape, dtype, C order, no pickles),
that the three arrays have the same length, that latents_classes is the complete grid in C order and
latents_values a function of it. The grid sizes are read from latents_classes (max + 1) and compared with
`expected_sizes` (the official grid by default); tests pass `expected_sizes=None` to read small files in
the official layout through exactly this code (a full-size test file takes ~10 s to compress, so that check
is a slow test).
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtlens.data.dsprites_render import FACTOR_SIZES
from mtlens.data.files import require_array, require_keys
from mtlens.errors import MtlensError

KEYS = ("imgs", "latents_values", "latents_classes")
NUM_FACTORS = 6
_CHUNK = 8192  # images decompressed per step when building the cache (32 MB)
_ZIP_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


def cache_dir() -> Path:
    """Returns the folder for decompressed caches when a data file's own folder is read-only."""
    return Path(os.environ.get("MTLENS_CACHE") or Path.home() / ".cache" / "mtlens")


def _read_npy_header(path: Path, key: str, fp: object) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Returns (shape, fortran_order, dtype) of the .npy stream `fp`, left at the start of its data."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise MtlensError(f"{path}: {key!r} is a .npy version {version}, expected 1.0 or 2.0")
    except ValueError as err:
        if isinstance(err, MtlensError):
            raise
        raise MtlensError(f"{path}: {key!r} is not a readable .npy array ({err}); is this the official file?") from None
    if dtype.hasobject:
        raise MtlensError(
            f"{path}: {key!r} holds Python objects (dtype {dtype}); expected numbers, pickles are refused"
        )
    return tuple(shape), bool(fortran), dtype


class DSpritesFile:
    """The arrays of an official-format dSprites npz, validated; images read lazily by index.

    `expected_sizes`: the factor grid the file must hold (the official one by default; None accepts any
    complete grid of the six factors, for small files in the official layout).
    """

    def __init__(self, path: str | os.PathLike[str], expected_sizes: Sequence[int] | None = FACTOR_SIZES) -> None:
        self.path = Path(path)
        try:
            zf = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as err:
            raise MtlensError(
                f"{self.path}: cannot open as an .npz (zip) file ({err}); is this the official file?"
            ) from None
        with zf:
            members = {i.filename[: -len(".npy")]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            require_keys(self.path, members, KEYS)
            headers = {}
            for key in KEYS:
                with zf.open(members[key]) as fp:
                    headers[key] = _read_npy_header(self.path, key, fp) + (fp.tell(),)
            n = self._check_headers(headers)
            classes = self._read_small(zf, members["latents_classes"], "latents_classes")
            values = self._read_small(zf, members["latents_values"], "latents_values")
            self.factor_sizes = self._check_grid(classes, n, expected_sizes)
            self.factor_values = self._value_table(classes, values)
            imgs = members["imgs"]
            if imgs.compress_type == zipfile.ZIP_STORED:
                self._imgs = self._map_stored(imgs, headers["imgs"][3], n)
                self._packed = None
                self.storage = "stored npz member, memory-mapped"
            else:
                self._imgs = None
                self._packed = self._packed_cache(zf, imgs, n)
                self.storage = f"decompressed cache {self.cache_path}, memory-mapped"
        self.num_images = n

    # ------------------------------------------------------------------ checks
    def _check_headers(self, headers: dict[str, tuple]) -> int:
        """Returns N after checking every array's shape, dtype and memory order."""
        shape, fortran, dtype, _ = headers["imgs"]
        require_array(self.path, "imgs", (None, 64, 64), "u", shape, dtype)
        if dtype != np.uint8:
            raise MtlensError(f"{self.path}: 'imgs' has dtype {dtype}, expected uint8")
        n = shape[0]
        for key, kind, want in (("latents_values", "f", np.float64), ("latents_classes", "iu", None)):
            s, _, dt, _ = headers[key]
            require_array(self.path, key, (None, NUM_FACTORS), kind, s, dt)
            if want is not None and dt != want:
                raise MtlensError(f"{self.path}: {key!r} has dtype {dt}, expected {np.dtype(want)}")
            if s[0] != n:
                raise MtlensError(f"{self.path}: {key!r} has {s[0]} rows but 'imgs' has {n}; the arrays must match")
        for key, (s, f, _, _) in headers.items():
            if f and len(s) > 1:
                raise MtlensError(
                    f"{self.path}: {key!r} is stored in Fortran order; expected C order (the official layout)"
                )
        return n

    def _read_small(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
        """Returns a whole (small) member array, read without pickles."""
        with zf.open(info) as fp:
            try:
                return np.lib.format.read_array(fp, allow_pickle=False)
            except (ValueError, OSError, zipfile.BadZipFile) as err:
                raise MtlensError(f"{self.path}: {key!r} cannot be read ({err}); the file may be truncated") from None

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

    # ------------------------------------------------------------------ image storage
    def _map_stored(self, info: zipfile.ZipInfo, npy_header_len: int, n: int) -> np.ndarray:
        """Returns a read-only memory map of a STORED member's array data."""
        with open(self.path, "rb") as fh:
            fh.seek(info.header_offset)
            head = fh.read(_ZIP_LOCAL_HEADER.size)
        fields = _ZIP_LOCAL_HEADER.unpack(head)
        if fields[0] != b"PK\x03\x04":
            raise MtlensError(f"{self.path}: broken zip header for 'imgs'; the file may be damaged")
        offset = info.header_offset + _ZIP_LOCAL_HEADER.size + fields[9] + fields[10] + npy_header_len
        if offset + n * 64 * 64 > self.path.stat().st_size:
            raise MtlensError(f"{self.path}: 'imgs' is truncated (needs {n * 4096} bytes); download the file again")
        return np.memmap(self.path, dtype=np.uint8, mode="r", offset=offset, shape=(n, 64, 64))

    def _packed_cache(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, n: int) -> np.ndarray:
        """Returns the memory-mapped bit-packed images, decompressing `imgs` into the cache first if needed."""
        name = self.path.name.split(".")[0] + ".imgs-packed.npy"
        folder = self.path.parent if os.access(self.path.parent, os.W_OK) else cache_dir()
        self.cache_path = folder / name
        if self.cache_path.is_file() and self.cache_path.stat().st_mtime >= self.path.stat().st_mtime:
            cached = np.load(self.cache_path, mmap_mode="r", allow_pickle=False)
            if cached.shape == (n, 512) and cached.dtype == np.uint8:
                return cached
        folder.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_name(self.cache_path.name + f".tmp{os.getpid()}")
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 512))
            with zf.open(info) as fp:
                _read_npy_header(self.path, "imgs", fp)
                for start in range(0, n, _CHUNK):
                    count = min(_CHUNK, n - start)
                    raw = fp.read(count * 4096)
                    if len(raw) != count * 4096:
                        got = start + len(raw) // 4096
                        raise MtlensError(f"{self.path}: 'imgs' ends after {got} of {n} images; the file is truncated")
                    chunk = np.frombuffer(raw, dtype=np.uint8).reshape(count, 4096)
                    if chunk.max() > 1:
                        bad = start + int(np.flatnonzero(chunk.max(axis=1) > 1)[0])
                        raise MtlensError(
                            f"{self.path}: 'imgs' image {bad} has values above 1; expected binary images (0/1)"
                        )
                    out[start : start + count] = np.packbits(chunk, axis=1)
            out.flush()
            del out
            os.replace(tmp, self.cache_path)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise MtlensError(f"{self.path}: cannot decompress 'imgs' into {self.cache_path} ({err})") from None
        finally:
            if tmp.exists():
                tmp.unlink()
        return np.load(self.cache_path, mmap_mode="r", allow_pickle=False)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Returns float32 images [N, 64, 64] in {0, 1} for valid flat indices."""
        if self._packed is not None:
            bits = np.unpackbits(self._packed[indices], axis=1)
            return bits.reshape(-1, 64, 64).astype(np.float32)
        batch = np.asarray(self._imgs[indices])
        if batch.size and batch.max() > 1:
            bad = int(indices[int(np.flatnonzero(batch.reshape(len(batch), -1).max(axis=1) > 1)[0])])
            raise MtlensError(f"{self.path}: 'imgs' image {bad} has values above 1; expected binary images (0/1)")
        return batch.astype(np.float32)
