"""One reader of `.npz` members for the official data files (dSprites, MPI3D), without `np.load`.

`np.load` cannot memory-map a member of an `.npz` and reads it whole (dSprites' `imgs` is 3 GB, MPI3D's
`images` 12.7 GB). An `.npz` is a zip of `.npy` files, so:
- a STORED member (`np.savez`) is a plain `.npy` at a fixed place in the zip and is memory-mapped in place:
  its data starts after the zip local header (30 bytes + the local header's own name and extra-field
  lengths, which may differ from the central directory's) and the `.npy` header;
- a compressed member (`np.savez_compressed`, the official files) is decompressed once, streamed in chunks,
  into a cache `.npy` that later opens memory-map. Binary images (values 0/1) are cached bit-packed, eight
  pixels a byte (dSprites: 377 MB instead of 3 GB), and unpacked per batch on read.

Caches go to `cache_dir` when given, else $MTLENS_CACHE, else next to the data file when its folder is
writable, else ~/.cache/mtlens. A cache's name carries the member's CRC-32 from the zip directory, so a data
file whose content changes gets a new cache whatever its modification time; older caches of the same member
are removed when a new one is written. Caches are written to a temporary name and renamed when complete.

Every `.npy` header is checked before data is read (version, no Python objects: pickles are refused), and
every failure -- not a zip, a missing key, a truncated member, a corrupt deflate stream, a bad CRC -- is one
`MtlensError` line that names the file and says to download it again.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from mtlens.data.files import require_keys
from mtlens.errors import MtlensError

CACHE_ENV_VAR = "MTLENS_CACHE"
CHUNK_BYTES = 32 << 20  # decompressed bytes per step when building a cache: bounds its memory
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # zip local file header, 30 bytes; the last two: name, extra lengths
# what a damaged member raises while it is decompressed or parsed (OSError: a read error of the data file)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, OSError)
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError)
_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
_FIX = "the file is damaged or incomplete; download it again"


@dataclass(frozen=True)
class MemberHeader:
    """A member's `.npy` header: shape, dtype, memory order, and where its data starts in the member."""

    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_start: int  # bytes of .npy header before the data, inside the member

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(frozen=True)
class MappedMember:
    """A member opened for reading by index: `array` is a read-only memory map.

    `packed`: the array holds rows of bits (N, row_bytes / 8), as `np.packbits(rows, axis=1)`; `unpack_rows`
    gives the rows back. `how` says where the data is read from, for a dataset's `source`.
    """

    array: np.ndarray
    packed: bool
    how: str
    cache_path: Path | None = None


def default_cache_dir() -> Path:
    """Returns the cache folder used when neither cache_dir, $MTLENS_CACHE nor the data file's folder serves."""
    return Path.home() / ".cache" / "mtlens"


@contextmanager
def _damaged(what: str, errors: tuple[type[BaseException], ...] = _READ_ERRORS) -> Iterator[None]:
    """Turns the errors a damaged file raises inside the block into one line: `what (reason); download again`."""
    try:
        yield
    except MtlensError:
        raise
    except errors as err:
        raise MtlensError(f"{what} ({_reason(err)}); {_FIX}") from None


def read_npy_header(fp: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """Returns (shape, dtype, fortran_order) of the `.npy` stream `fp`, left at its data; refuses objects."""
    with _damaged(f"{where} is not a readable .npy array"):
        version = npy_format.read_magic(fp)
        if version not in _HEADER_READERS:
            raise MtlensError(f"{where} is a .npy version {version}, expected 1.0 or 2.0")
        shape, fortran, dtype = _HEADER_READERS[version](fp)
    if dtype.hasobject:
        raise MtlensError(f"{where} holds Python objects (dtype {dtype}); expected numbers, pickles are refused")
    return tuple(int(s) for s in shape), dtype, bool(fortran)


def unpack_rows(packed: np.ndarray, rows: np.ndarray, row_shape: tuple[int, ...]) -> np.ndarray:
    """Returns the uint8 rows [len(rows), *row_shape] (values 0/1) of a bit-packed array."""
    bits = np.unpackbits(packed[rows], axis=1)
    return bits.reshape(-1, *row_shape)


class NpzArchive:
    """An open `.npz`: its `.npy` members by key, their headers, small members read whole, big ones mapped.

    Use as a context manager (or call `close`); memory maps it returns stay valid after closing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with _damaged(f"{self.path}: cannot open as an .npz (zip) file", (OSError, zipfile.BadZipFile)):
            self._zip = zipfile.ZipFile(self.path)
        self._members = {i.filename[: -len(".npy")]: i for i in self._zip.infolist() if i.filename.endswith(".npy")}

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Closes the zip file."""
        self._zip.close()

    @property
    def keys(self) -> list[str]:
        """Returns the array names held (member names without `.npy`)."""
        return list(self._members)

    def require(self, keys: Iterable[str]) -> None:
        """Raises unless every one of `keys` is a member."""
        require_keys(self.path, self._members, list(keys))

    def _where(self, key: str) -> str:
        return f"{self.path}: {key!r}"

    def _open(self, key: str) -> IO[bytes]:
        self.require([key])
        with _damaged(f"{self._where(key)} cannot be opened"):
            return self._zip.open(self._members[key])

    def header(self, key: str) -> MemberHeader:
        """Returns the `.npy` header of member `key` (read without decompressing the data)."""
        with self._open(key) as fp:
            shape, dtype, fortran = read_npy_header(fp, self._where(key))
            return MemberHeader(key, shape, dtype, fortran, fp.tell())

    def read(self, key: str) -> np.ndarray:
        """Returns member `key` read whole into memory (for small arrays), without pickles."""
        self.header(key)  # named errors for objects and bad headers first
        with self._open(key) as fp, _damaged(f"{self._where(key)} cannot be read"):
            return npy_format.read_array(fp, allow_pickle=False)

    def is_stored(self, key: str) -> bool:
        """Returns whether member `key` is stored uncompressed (and so can be memory-mapped in place)."""
        self.require([key])
        return self._members[key].compress_type == zipfile.ZIP_STORED

    def map(self, key: str, *, binary: bool = False, cache_dir: str | os.PathLike[str] | None = None) -> MappedMember:
        """Returns member `key` as a read-only memory map: in place when stored, else from its cache.

        binary: the member holds uint8 rows of 0/1 (checked while a cache is built): its cache is bit-packed.
        A stored member is mapped as it is; its values are the caller's to check.
        """
        head = self.header(key)
        if self.is_stored(key):
            return MappedMember(self._map_in_place(head), False, f"{key!r} memory-mapped in place")
        target = self._cache_path(key, binary, cache_dir)
        if not _cache_matches(target, head, binary):
            _remove_stale(target)
            self._build_cache(head, target, binary)
        cached = np.load(target, mmap_mode="r", allow_pickle=False)
        how = f"{key!r} decompressed once to {target}{' (bit-packed)' if binary else ''}, memory-mapped from there"
        return MappedMember(cached, binary, how, target)

    # ------------------------------------------------------------------ stored members
    def _map_in_place(self, head: MemberHeader) -> np.ndarray:
        info = self._members[head.key]
        with open(self.path, "rb") as fh:
            fh.seek(info.header_offset)
            raw = fh.read(_LOCAL_HEADER.size)
        if len(raw) != _LOCAL_HEADER.size or _LOCAL_HEADER.unpack(raw)[0] != b"PK\x03\x04":
            raise MtlensError(f"{self._where(head.key)} has no zip local header; {_FIX}")
        fields = _LOCAL_HEADER.unpack(raw)
        offset = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1] + head.data_start
        if offset + head.nbytes > self.path.stat().st_size:
            raise MtlensError(
                f"{self._where(head.key)} is cut short (shape {head.shape} needs {head.nbytes} bytes); {_FIX}"
            )
        order = "F" if head.fortran_order else "C"
        return np.memmap(self.path, dtype=head.dtype, mode="r", offset=offset, shape=head.shape, order=order)

    # ------------------------------------------------------------------ compressed members: the cache
    def _cache_path(self, key: str, binary: bool, cache_dir: str | os.PathLike[str] | None) -> Path:
        folder = _cache_folder(self.path, cache_dir)
        crc = self._members[key].CRC
        return folder / f"{self.path.name.split('.')[0]}.{key}{'-packed' if binary else ''}.{crc:08x}.npy"

    def _build_cache(self, head: MemberHeader, target: Path, binary: bool) -> None:
        """Decompresses member `head.key` into the cache `target` (bit-packed when binary), atomically."""
        rows, row_bytes = _binary_rows(head, self._where(head.key)) if binary else (0, 0)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise MtlensError(f"cannot create the cache folder {target.parent} ({_reason(err)}); set ${CACHE_ENV_VAR}") from None
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        try:
            shape = (rows, row_bytes // 8) if binary else head.shape
            out = npy_format.open_memmap(tmp, mode="w+", dtype=np.uint8 if binary else head.dtype, shape=shape,
                                         fortran_order=head.fortran_order and not binary)
            flat = out.reshape(-1, order="F" if head.fortran_order and not binary else "C").view(np.uint8)
            damaged = _damaged(f"{self._where(head.key)} cannot be decompressed into {target}", _DAMAGED)
            with self._open(head.key) as fp, damaged:
                read_npy_header(fp, self._where(head.key))
                if binary:
                    self._stream_packed(fp, flat.reshape(rows, row_bytes // 8), rows, row_bytes, head.key)
                else:
                    self._stream_raw(fp, flat, head)
                fp.read(1)  # reaching the end makes zipfile check the member's CRC-32
            out.flush()
            del out, flat
            os.replace(tmp, target)
        except OSError as err:  # writing the cache: a full disk, a folder that refuses files
            raise MtlensError(
                f"{self._where(head.key)}: cannot write the cache {target} ({_reason(err)}); free space there or "
                f"set ${CACHE_ENV_VAR} to another folder"
            ) from None
        finally:
            if tmp.exists():
                tmp.unlink()

    def _stream_raw(self, fp: IO[bytes], flat: np.ndarray, head: MemberHeader) -> None:
        pos = 0
        while pos < flat.size:
            got = fp.readinto(memoryview(flat[pos : pos + CHUNK_BYTES]))  # type: ignore[attr-defined]
            if not got:
                raise MtlensError(f"{self._where(head.key)} ends after {pos} of {flat.size} bytes; {_FIX}")
            pos += got

    def _stream_packed(self, fp: IO[bytes], out: np.ndarray, rows: int, row_bytes: int, key: str) -> None:
        step = max(1, CHUNK_BYTES // row_bytes)
        buffer = np.empty((step, row_bytes), dtype=np.uint8)
        for start in range(0, rows, step):
            count = min(step, rows - start)
            chunk = buffer[:count]
            view, got = memoryview(chunk.reshape(-1)), 0
            while got < chunk.size:
                n = fp.readinto(view[got:])  # type: ignore[attr-defined]
                if not n:
                    done = start + got // row_bytes
                    raise MtlensError(f"{self._where(key)} ends after {done} of {rows} images; {_FIX}")
                got += n
            if chunk.max() > 1:
                bad = start + int(np.flatnonzero(chunk.max(axis=1) > 1)[0])
                raise MtlensError(f"{self._where(key)} image {bad} has values above 1; expected binary images (0/1)")
            out[start : start + count] = np.packbits(chunk, axis=1)


def _binary_rows(head: MemberHeader, where: str) -> tuple[int, int]:
    """Returns (rows, bytes per row) of a binary member: C-order uint8 [N, ...] rows of a multiple of 8 pixels."""
    rows = head.shape[0] if head.shape else 0
    row_bytes = int(np.prod(head.shape[1:], dtype=np.int64)) if len(head.shape) > 1 else 0
    if head.dtype != np.uint8 or head.fortran_order or row_bytes == 0 or row_bytes % 8:
        raise MtlensError(
            f"{where} has dtype {head.dtype}, shape {head.shape}, {'F' if head.fortran_order else 'C'} order; "
            "expected C-order uint8 images of 8k pixels (binary images are cached bit-packed)"
        )
    return rows, row_bytes


def _cache_folder(source: Path, cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    return source.parent if os.access(source.parent, os.W_OK) else default_cache_dir()


def _cache_matches(target: Path, head: MemberHeader, binary: bool) -> bool:
    """Returns whether `target` is a complete cache of the member (its name already carries the member's CRC)."""
    if not target.is_file():
        return False
    try:
        with open(target, "rb") as fp:
            shape, dtype, _ = read_npy_header(fp, str(target))
            data_start = fp.tell()
    except (MtlensError, OSError):
        return False
    if binary:
        rows, row_bytes = _binary_rows(head, str(target))
        want = ((rows, row_bytes // 8), np.dtype(np.uint8))
    else:
        want = (head.shape, head.dtype)
    complete = target.stat().st_size == data_start + int(np.prod(want[0], dtype=np.int64)) * want[1].itemsize
    return (shape, dtype) == want and complete


def _remove_stale(target: Path) -> None:
    """Removes the caches of the same member made from other versions of the data file (other CRCs)."""
    if not target.parent.is_dir():
        return
    stem = target.name.rsplit(".", 2)[0]  # "<file>.<key>[-packed]"
    stale = [p for p in target.parent.glob(f"{stem}.*.npy") if len(p.name.rsplit(".", 2)[1]) == 8]
    # "<file>.imgs-packed.npy": the name dSprites' cache had before it carried the CRC
    for old in [*stale, target.parent / f"{stem}.npy"]:
        if old != target:
            old.unlink(missing_ok=True)


def _reason(err: BaseException) -> str:
    """Returns an exception's message on one line."""
    return " ".join(str(err).split()) or type(err).__name__
