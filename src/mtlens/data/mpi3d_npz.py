"""Memory-mapping one array of an `.npz` file without reading it into memory.

`np.load(..., mmap_mode="r")` cannot map members of an `.npz` (it reads them whole), and the MPI3D arrays are
12.7 GB (1,036,800 x 64 x 64 x 3 bytes). An `.npz` is a zip of `.npy` files: a member written uncompressed
(ZIP_STORED, as `np.savez` does) is a plain `.npy` at a fixed offset of the zip, so it is mapped in place:
offset = the member's local header offset + 30 + file-name length + extra-field length (the local header's own
lengths, which may differ from the central directory's), then the `.npy` header is parsed with
`numpy.lib.format`. A compressed member (`np.savez_compressed`) cannot be mapped: it is decompressed once, in
chunks, to a cache `.npy` that is then mapped, and the returned description says so.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from mtlens.data.files import require_keys
from mtlens.errors import MtlensError

_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # zip local file header, 30 bytes
_CHUNK = 64 << 20


def _read_npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:  # noqa: ANN001 (binary file object)
    """Returns (shape, fortran_order, dtype) of the .npy stream at f's position; leaves f at the data."""
    version = npy_format.read_magic(f)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(f)
    return npy_format.read_array_header_2_0(f)


def _member(path: Path, zf: zipfile.ZipFile, key: str) -> zipfile.ZipInfo:
    names = {n[:-4] if n.endswith(".npy") else n: n for n in zf.namelist()}
    require_keys(path, names.keys(), [key])
    return zf.getinfo(names[key])


def _map_stored(path: Path, info: zipfile.ZipInfo) -> np.memmap:
    """Returns a read-only memory map of an uncompressed .npy member, in place in the zip."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
        if fields[0] != b"PK\x03\x04":
            raise MtlensError(f"{path}: member {info.filename} has no zip local header; the file is damaged, download it again")
        start = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
        f.seek(start)
        shape, fortran, dtype = _read_npy_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise MtlensError(f"{path}: member {info.filename} holds Python objects, expected a numeric array")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + nbytes > path.stat().st_size:
        raise MtlensError(f"{path}: member {info.filename} is cut short ({shape} needs {nbytes} bytes); download it again")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    raw = cache_dir or os.environ.get("MTLENS_CACHE") or Path.home() / ".cache" / "mtlens"
    return Path(raw).expanduser()


def _decompress_to_cache(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, cache: Path) -> Path:
    """Returns the cache .npy of a compressed member, writing it (atomically) when it is not there yet."""
    stat = path.stat()
    target = cache / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}.{key}.npy"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with zf.open(info) as src:
        shape, fortran, dtype = _read_npy_header(src)
        if dtype.hasobject:
            raise MtlensError(f"{path}: member {info.filename} holds Python objects, expected a numeric array")
        out = npy_format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape, fortran_order=fortran)
        flat = out.reshape(-1, order="F" if fortran else "C").view(np.uint8)
        pos = 0
        while pos < flat.size:
            got = src.readinto(memoryview(flat[pos : pos + _CHUNK]))
            if not got:
                raise MtlensError(f"{path}: member {info.filename} ends early; the file is damaged, download it again")
            pos += got
        out.flush()
        del out, flat
    os.replace(tmp, target)
    return target


def open_npz_array(
    path: Path, key: str, cache_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, str]:
    """Returns (a read-only memory map of array `key` of the .npz at `path`, how it was opened)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise MtlensError(f"{path}: not a readable .npz (zip) file ({err}); download it again") from None
    with zf:
        info = _member(path, zf, key)
        if info.compress_type == zipfile.ZIP_STORED:
            return _map_stored(path, info), f"{key!r} memory-mapped in place"
        if info.compress_type != zipfile.ZIP_DEFLATED:
            raise MtlensError(f"{path}: member {info.filename} uses zip compression {info.compress_type}, expected stored or deflated")
        cached = _decompress_to_cache(path, zf, info, key, _cache_dir(cache_dir))
    return np.load(cached, mmap_mode="r"), f"{key!r} compressed: decompressed once to {cached}, memory-mapped from there"
