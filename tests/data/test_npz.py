"""The one npz reader (mtlens.data.npz) that dSprites and MPI3D share: stored members mapped in place,
compressed ones decompressed once into a cache (bit-packed for binary images), caches keyed by the member's
CRC-32, and one-line errors for damaged files (corrupt deflate streams included)."""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from mtlens import MtlensError
from mtlens.data import mpi3d
from mtlens.data.dsprites import OFFICIAL_FILE
from mtlens.data.dsprites_file import DSpritesFile
from mtlens.data.mpi3d import MPI3D
from mtlens.data.npz import NpzArchive, unpack_rows

TWO = (1, 1, 1, 1, 1, 1, 2)  # an MPI3D grid of two images


@pytest.fixture(autouse=True)
def _no_env_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTLENS_CACHE", raising=False)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)


def _binary(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 16, 16)) > 0.7).astype(np.uint8)


def _dsprites_arrays(sizes: tuple[int, ...] = (1, 1, 1, 2, 2, 2)) -> dict[str, np.ndarray]:
    """The three arrays of an official-format dSprites file over a small complete grid."""
    n = int(np.prod(sizes))
    classes = np.stack(np.unravel_index(np.arange(n), sizes), axis=1).astype(np.int64)
    imgs = (np.random.default_rng(n).random((n, 64, 64)) > 0.8).astype(np.uint8)
    return {"imgs": imgs, "latents_values": classes.astype(np.float64), "latents_classes": classes}


@pytest.fixture
def _two_image_toy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(mpi3d.VARIANTS, "toy", dataclasses.replace(mpi3d.VARIANTS["toy"], factor_sizes=TWO))


def open_array(path: Path, key: str, cache: Path | None = None, binary: bool = False) -> tuple[np.ndarray, str]:
    with NpzArchive(path) as npz:
        member = npz.map(key, binary=binary, cache_dir=cache)
    return member.array, member.how


def deflate_with_bad_block(path: Path, arrays: dict[str, np.ndarray], bad: str) -> Path:
    """Writes an npz by hand whose member `bad` has a deflate stream broken in its middle (a reserved block type).

    The stream is flushed to a byte boundary half-way, so the next block header sits at a known byte; 0xFF
    there reads as a final block of the reserved type 3, which zlib refuses ("invalid block type").
    """
    local, central, offset = [], [], 0
    for key, array in arrays.items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, array)
        raw = buf.getvalue()
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = comp.compress(raw[: len(raw) // 2]) + comp.flush(zlib.Z_FULL_FLUSH)
        mark = len(body)
        body = bytearray(body + comp.compress(raw[len(raw) // 2 :]) + comp.flush())
        if key == bad:
            body[mark] = 0xFF
        name = f"{key}.npy".encode()
        crc = zlib.crc32(raw)
        # zip local header / central directory entry (PKWARE APPNOTE 4.3.7, 4.3.12): deflate, date 1980-01-01
        local.append(struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 33, crc, len(body), len(raw), len(name), 0)
                     + name + bytes(body))
        central.append(struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 33, crc, len(body), len(raw),
                                   len(name), 0, 0, 0, 0, 0, offset) + name)
        offset += len(local[-1])
    directory = b"".join(central)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), offset, 0)
    path.write_bytes(b"".join(local) + directory + end)
    return path


# ---------------------------------------------------------------------------------------------- stored members
def test_stored_member_is_memory_mapped_in_place(tmp_path: Path) -> None:
    imgs = _images(5)
    path = tmp_path / "a.npz"
    np.savez(path, other=np.arange(3), images=imgs)
    arr, how = open_array(path, "images")
    assert isinstance(arr, np.memmap) and Path(arr.filename) == path and "in place" in how
    np.testing.assert_array_equal(arr, imgs)
    assert not arr.flags.writeable
    assert sorted(NpzArchive(path).keys) == ["images", "other"]


def test_stored_member_with_zip64_extra_field(tmp_path: Path) -> None:
    # force_zip64 writes a zip64 extra field in the local header, as numpy does for large members
    imgs = _images(3, seed=1)
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        with zf.open("images.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, imgs)
    arr, _ = open_array(path, "images")
    np.testing.assert_array_equal(arr, imgs)


def test_fortran_order_member_stored_and_compressed(tmp_path: Path) -> None:
    imgs = np.asfortranarray(_images(2, seed=3))
    np.savez(tmp_path / "f.npz", images=imgs)
    np.savez_compressed(tmp_path / "g.npz", images=imgs)
    for name in ("f.npz", "g.npz"):
        arr, _ = open_array(tmp_path / name, "images")
        np.testing.assert_array_equal(arr, imgs)


def test_small_members_are_read_whole_without_pickles(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    np.savez_compressed(path, values=np.linspace(0, 1, 7), objects=np.array([{"a": 1}], dtype=object))
    with NpzArchive(path) as npz:
        np.testing.assert_array_equal(npz.read("values"), np.linspace(0, 1, 7))
        assert npz.header("values").shape == (7,) and npz.header("values").dtype == np.float64
        with pytest.raises(MtlensError, match="'objects' holds Python objects .* pickles are refused"):
            npz.read("objects")


# ---------------------------------------------------------------------------------------------- the cache
def test_compressed_member_is_decompressed_once_to_cache(tmp_path: Path) -> None:
    imgs = _images(4, seed=2)
    path = tmp_path / "c.npz"
    np.savez_compressed(path, images=imgs)
    cache = tmp_path / "cache"
    arr, how = open_array(path, "images", cache)
    np.testing.assert_array_equal(arr, imgs)
    assert "decompressed once" in how and isinstance(arr, np.memmap)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npy"
    before = files[0].stat().st_mtime_ns
    arr2, _ = open_array(path, "images", cache)
    np.testing.assert_array_equal(arr2, imgs)
    assert files[0].stat().st_mtime_ns == before  # reused, not written again


def test_binary_members_are_cached_bit_packed(tmp_path: Path) -> None:
    imgs = _binary(40, seed=4)
    path = tmp_path / "b.npz"
    np.savez_compressed(path, imgs=imgs)
    member = NpzArchive(path).map("imgs", binary=True)
    assert member.packed and member.array.shape == (40, 32) and member.array.dtype == np.uint8
    assert member.cache_path is not None and member.cache_path.parent == tmp_path  # next to the writable file
    rows = np.array([39, 0, 7, 7])
    np.testing.assert_array_equal(unpack_rows(member.array, rows, (16, 16)), imgs[rows])
    stored = tmp_path / "s.npz"
    np.savez(stored, imgs=imgs)
    assert not NpzArchive(stored).map("imgs", binary=True).packed  # mapped as it is


def test_cache_follows_the_content_not_the_modification_time(tmp_path: Path) -> None:
    """A data file replaced by another version with an older time stamp (cp -p, tar) must not reuse the cache."""
    path = tmp_path / "c.npz"
    np.savez_compressed(path, images=_images(3, seed=5))
    first, _ = open_array(path, "images")
    stamp = path.stat().st_mtime_ns
    new = _images(3, seed=6)
    np.savez_compressed(path, images=new)
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    again, _ = open_array(path, "images")
    np.testing.assert_array_equal(again, new)
    assert len(list(tmp_path.glob("c.images.*.npy"))) == 1  # the stale cache is gone
    legacy = tmp_path / "c.images.npy"  # a cache named as before caches carried the CRC
    legacy.write_bytes(b"old")
    np.savez_compressed(path, images=_images(3, seed=7))
    open_array(path, "images")
    assert not legacy.exists() and len(list(tmp_path.glob("c.images.*.npy"))) == 1


def test_dsprites_and_mpi3d_read_through_the_same_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _two_image_toy: None
) -> None:
    calls = []
    real = NpzArchive.map

    def spy(self: NpzArchive, key: str, **kw: object) -> object:
        calls.append((self.path.name, key, kw.get("binary", False)))
        return real(self, key, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(NpzArchive, "map", spy)
    np.savez_compressed(tmp_path / OFFICIAL_FILE, **_dsprites_arrays())
    DSpritesFile(tmp_path / OFFICIAL_FILE, expected_sizes=None)
    np.savez(tmp_path / "mpi3d_toy.npz", images=_images(2))
    MPI3D("toy", data_dir=tmp_path)
    assert calls == [(OFFICIAL_FILE, "imgs", True), ("mpi3d_toy.npz", "images", False)]


# ---------------------------------------------------------------------------------------------- damaged files
def test_npz_errors_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(MtlensError, match="cannot open as an .npz"):
        open_array(bad, "images")
    path = tmp_path / "k.npz"
    np.savez(path, imgs=_images(1))
    with pytest.raises(MtlensError, match=r"missing key\(s\) images; expected images, found imgs"):
        open_array(path, "images")


@pytest.mark.parametrize("binary", [False, True])
def test_corrupt_deflate_stream_is_one_line(tmp_path: Path, binary: bool) -> None:
    arrays = {"imgs": _binary(64, seed=7) if binary else _images(8, seed=7)}
    path = deflate_with_bad_block(tmp_path / "broken.npz", arrays, bad="imgs")
    with pytest.raises(MtlensError) as err:
        open_array(path, "imgs", binary=binary)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 'imgs'") and "invalid block type" in msg and "download it again" in msg
    assert "\n" not in msg
    assert not list(tmp_path.glob("*.npy*"))  # no half-built cache


def test_corrupt_deflate_stream_in_the_official_loaders(tmp_path: Path, _two_image_toy: None) -> None:
    """Issue 10: a damaged official file gives one line naming it, from dSprites and MPI3D alike."""
    for bad in ("imgs", "latents_classes"):
        path = deflate_with_bad_block(tmp_path / OFFICIAL_FILE, _dsprites_arrays(), bad=bad)
        with pytest.raises(MtlensError, match=f"{OFFICIAL_FILE}: '{bad}' .*invalid block type.*download it again") as err:
            DSpritesFile(path, expected_sizes=None)
        assert "\n" not in str(err.value)
    path = deflate_with_bad_block(tmp_path / "mpi3d_toy.npz", {"images": _images(2)}, bad="images")
    with pytest.raises(MtlensError, match=r"mpi3d_toy.npz: 'images' cannot be decompressed .*download it again"):
        MPI3D("toy", data_dir=tmp_path)
    # a first block that cannot be inflated: the .npy header itself is unreadable
    raw = bytearray(path.read_bytes())
    raw[30 + len("images.npy")] = 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(MtlensError, match=r"mpi3d_toy.npz: 'images' is not a readable .npy array .*download it again"):
        MPI3D("toy", data_dir=tmp_path)


def test_bad_crc_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "crc.npz"
    np.savez_compressed(path, images=_images(4, seed=8))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("images.npy")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0x01  # one flipped bit in the stored pixels: inflates, CRC differs
    path.write_bytes(bytes(raw))
    with pytest.raises(MtlensError, match=r"crc.npz: 'images' cannot be decompressed into .*(CRC|invalid)") as err:
        open_array(path, "images")
    assert "\n" not in str(err.value) and not list(tmp_path.glob("*.npy*"))


def test_truncated_stored_member_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        with zf.open("images.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (100, 64, 64, 3)})
            f.write(_images(1).tobytes())
    with pytest.raises(MtlensError, match=r"'images' is cut short .*download it again"):
        open_array(path, "images")


def test_cache_problems_are_named_or_repaired(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    imgs = _images(3, seed=9)
    np.savez_compressed(path, images=imgs)
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"")
    with pytest.raises(MtlensError, match=r"cannot create the cache folder .*not_a_folder .*set \$MTLENS_CACHE"):
        open_array(path, "images", blocker)
    _, how = open_array(path, "images")
    cache = next(tmp_path.glob("c.images.*.npy"))
    cache.write_bytes(cache.read_bytes()[:-100])  # a cache cut short (a full disk, a killed copy) is rebuilt
    again, _ = open_array(path, "images")
    np.testing.assert_array_equal(again, imgs)
