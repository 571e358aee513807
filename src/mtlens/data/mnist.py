"""MNIST digits: the official IDX files when present, else scikit-learn's bundled 8x8 digits as a stand-in.

IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number -- two zero bytes, a
dtype code, the number of dimensions -- then one big-endian uint32 per dimension, then the payload in C
order, big-endian. Files may be gzipped (`.gz`).

The stand-in (no IDX files in the data directory): `sklearn.datasets.load_digits` (1797 images of 8x8 with
17 grey levels 0..16). Each image is scaled to [0, 1], upsampled bilinearly to 20x20 and pasted into a 28x28
field so that its centre of mass sits at the field's centre -- MNIST's own preprocessing (digits normalised
into a 20x20 box, then centred by centre of mass in 28x28). It has no official test set, so a fixed
stratified 6:1 split (MNIST's 60k:10k ratio, seed 0) stands in for train/test.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mtlens.data.base import Source
from mtlens.data.paths import find_file, resolve_data_dir
from mtlens.errors import MtlensError

# IDX dtype codes -> big-endian numpy dtypes (the IDX format description on the MNIST page)
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_FOLDERS = ("mnist", "MNIST/raw")  # besides the data directory itself: a plain copy, torchvision's layout
IMAGE_SIDE = 28
BOX_SIDE = 20  # MNIST normalised each digit into a 20x20 box before centring it in 28x28
STAND_IN_TEST_FRACTION = 1 / 7  # MNIST's 10k test of 70k images
STAND_IN_SPLIT_SEED = 0


def _read_bytes(path: Path) -> bytes:
    """Returns the file's content, un-gzipped when it is gzip (by its magic bytes, whatever the suffix)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise MtlensError(f"{path}: not a readable gzip file ({exc}); re-download it") from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Returns the array stored in an IDX file (raw or gzipped), in native byte order, validated against its header."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise MtlensError(f"{path}: {len(data)} bytes, expected an IDX header of at least 4 bytes")
    if data[0] != 0 or data[1] != 0:
        raise MtlensError(
            f"{path}: magic number starts with bytes {data[0]:#04x} {data[1]:#04x}, expected 0x00 0x00 (not IDX)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"{c:#04x}" for c in IDX_DTYPES)
        raise MtlensError(f"{path}: IDX dtype code {code:#04x}, expected one of {known}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MtlensError(
            f"{path}: header declares {ndim} dimensions ({header} bytes), but the file has {len(data)} bytes"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        raise MtlensError(
            f"{path}: header says shape {dims} of {dtype.name} ({expected} payload bytes), found {found} payload bytes"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Returns the path written: `array` as an IDX file (gzipped when the name ends in .gz)."""
    arr = np.asarray(array)
    codes = {dt.newbyteorder("=").str: c for c, dt in IDX_DTYPES.items()}
    key = arr.dtype.newbyteorder("=").str
    if key not in codes:
        raise MtlensError(f"cannot write dtype {arr.dtype} as IDX; use uint8, int8, int16, int32, float32 or float64")
    code = codes[key]
    body = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    body += np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(body) if path.suffix == ".gz" else body)
    return path


def is_digit(value: object) -> bool:
    """Returns whether `value` is an integer digit class 0..9 (bools excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value <= 9


@dataclass(frozen=True)
class DigitImages:
    """Digit images with labels: `x` float32 [N, 1, 28, 28] in [0, 1], `y` int64 [N] in 0..9, per split."""

    train_x: torch.Tensor
    train_y: np.ndarray
    test_x: torch.Tensor
    test_y: np.ndarray
    source: Source

    def split(self, name: str) -> tuple[torch.Tensor, np.ndarray]:
        """Returns (images, labels) of the "train" or "test" part."""
        if name not in ("train", "test"):
            raise MtlensError(f"digit images have the splits 'train' and 'test', got {name!r}")
        return (self.train_x, self.train_y) if name == "train" else (self.test_x, self.test_y)

    def describe(self) -> dict[str, object]:
        """Returns a JSON-able summary: sizes, image shape, class counts and source."""
        return {
            "name": "mnist",
            "num_images": int(len(self.train_y) + len(self.test_y)),
            "num_train": int(len(self.train_y)),
            "num_test": int(len(self.test_y)),
            "image_shape": list(self.train_x.shape[1:]),
            "train_class_counts": np.bincount(self.train_y, minlength=10).tolist(),
            "source": str(self.source),
        }


def _read_pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, np.ndarray]:
    """Returns the validated images (float32 [N,1,28,28] in [0,1]) and labels (int64 [N]) of one split."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or images.dtype != np.uint8:
        raise MtlensError(
            f"{images_path}: found {images.dtype} images of shape {images.shape}, expected uint8 (N, 28, 28)"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise MtlensError(f"{labels_path}: found {labels.dtype} labels of shape {labels.shape}, expected uint8 (N,)")
    if len(images) != len(labels):
        raise MtlensError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds {len(labels)} labels; "
            "expected equal counts (files from different sets?)"
        )
    if labels.size and labels.max() > 9:
        raise MtlensError(f"{labels_path}: label {int(labels.max())} found, expected digits 0..9")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, labels.astype(np.int64)


def _centre_in_field(box: np.ndarray) -> np.ndarray:
    """Returns the 28x28 field holding a 20x20 box shifted so its centre of mass is at the field's centre."""
    field = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    mass = box.sum()
    rows, cols = np.mgrid[0:BOX_SIDE, 0:BOX_SIDE]
    com = (float((rows * box).sum() / mass), float((cols * box).sum() / mass)) if mass > 0 else (9.5, 9.5)
    centre = (IMAGE_SIDE - 1) / 2
    # integer shift keeps the grey levels as interpolated; clipping keeps the whole box inside the field
    top, left = (int(np.clip(round(centre - c), 0, IMAGE_SIDE - BOX_SIDE)) for c in com)
    field[top : top + BOX_SIDE, left : left + BOX_SIDE] = box
    return field


@lru_cache(maxsize=1)  # deterministic and small (1797 images); built once per process
def stand_in_digits() -> DigitImages:
    """Returns scikit-learn's 8x8 digits upsampled to MNIST's 28x28 layout, with a fixed stratified 6:1 split.

    The result is cached and shared: do not modify its tensors in place.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # 16 = the brightest level
    boxes = F.interpolate(small, size=(BOX_SIDE, BOX_SIDE), mode="bilinear", align_corners=False).clamp_(0, 1)
    fields = np.stack([_centre_in_field(b) for b in boxes[:, 0].numpy()])
    x = torch.from_numpy(fields).unsqueeze(1)
    y = bunch.target.astype(np.int64)
    train, test = train_test_split(
        np.arange(len(y)), test_size=STAND_IN_TEST_FRACTION, random_state=STAND_IN_SPLIT_SEED, stratify=y
    )
    train, test = np.sort(train), np.sort(test)
    source = Source(
        "stand-in",
        "scikit-learn load_digits (1797 8x8 images, grey levels 0..16) upsampled bilinearly into a 20x20 box, "
        "centred by centre of mass in 28x28; no MNIST IDX files in the data directory",
    )
    return DigitImages(x[train], y[train], x[test], y[test], source)


def load_mnist(data_dir: str | os.PathLike[str] | None = None) -> DigitImages:
    """Returns MNIST from the official IDX files in the data directory, else the scikit-learn stand-in.

    Looks for train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
    t10k-labels-idx1-ubyte (each optionally .gz) in the data directory, its `mnist/` or `MNIST/raw/` folder.
    Some but not all four present is an error (a half-copied download), not a silent fallback.
    """
    root = resolve_data_dir(data_dir)
    names = [n for pair in MNIST_FILES.values() for n in pair]
    found = {n: find_file(root, [n], folders=MNIST_FOLDERS, gzipped=True) for n in names}
    present = [n for n, p in found.items() if p is not None]
    if not present:
        return stand_in_digits()
    missing = [n for n in names if found[n] is None]
    if missing:
        raise MtlensError(
            f"{root}: MNIST files {', '.join(missing)} (or .gz) are missing while {', '.join(present)} exist; "
            "add all four IDX files or remove them to use the stand-in"
        )
    parts = {split: _read_pair(found[a], found[b]) for split, (a, b) in MNIST_FILES.items()}  # type: ignore[arg-type]
    source = Source("official", f"MNIST IDX files in {found[names[0]].parent}")  # type: ignore[union-attr]
    return DigitImages(*parts["train"], *parts["test"], source)

