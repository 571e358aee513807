import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data.mnist import MNIST_FILES, load_mnist, read_idx, stand_in_digits, write_idx


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTLENS_DATA", raising=False)


def _idx_bytes(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    # written by hand (not by write_idx) so the parser is checked against the format, not against itself
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def test_read_idx_raw_and_gz_header_dtype_and_order(tmp_path: Path) -> None:
    pixels = bytes(range(2 * 3 * 4))
    for name, data in (("img", _idx_bytes(0x08, (2, 3, 4), pixels)),):
        (tmp_path / name).write_bytes(data)
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data))
    for path in (tmp_path / "img", tmp_path / "img.gz"):
        arr = read_idx(path)
        assert arr.shape == (2, 3, 4) and arr.dtype == np.uint8
        assert arr[0, 0].tolist() == [0, 1, 2, 3] and arr[1, 2, 3] == 23  # C order, row-major
    # big-endian multi-byte types
    (tmp_path / "i32").write_bytes(_idx_bytes(0x0C, (2,), struct.pack(">ii", 16909060, -7)))
    a = read_idx(tmp_path / "i32")
    assert a.dtype == np.int32 and a.tolist() == [16909060, -7]
    (tmp_path / "f32").write_bytes(_idx_bytes(0x0D, (3,), struct.pack(">fff", 0.5, -2.0, 3.25)))
    assert read_idx(tmp_path / "f32").tolist() == [0.5, -2.0, 3.25]
    (tmp_path / "i16").write_bytes(_idx_bytes(0x0B, (1, 2), struct.pack(">hh", -300, 258)))
    assert read_idx(tmp_path / "i16").tolist() == [[-300, 258]]
    # labels keep file order
    (tmp_path / "lab").write_bytes(_idx_bytes(0x08, (5,), bytes([7, 2, 1, 0, 4])))
    assert read_idx(tmp_path / "lab").tolist() == [7, 2, 1, 0, 4]
    # write_idx round-trips every supported dtype
    for dt in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        arr = (np.arange(12).reshape(3, 4) - 3).astype(dt)
        back = read_idx(write_idx(tmp_path / f"w_{np.dtype(dt).name}.gz", arr))
        assert back.dtype == dt and np.array_equal(back, arr)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "magic number"),
        (bytes([0, 0, 7, 1, 0, 0, 0, 1, 5]), "dtype code 0x07"),
        (_idx_bytes(0x08, (2, 28, 28), bytes(2 * 28 * 28 - 10)), r"header says shape \(2, 28, 28\).*found 1558"),
        (_idx_bytes(0x08, (3,), bytes(4)), "found 4 payload bytes"),
        (bytes([0, 0, 8, 3, 0, 0, 0]), "declares 3 dimensions"),
        (b"\x00\x00", "expected an IDX header"),
    ],
)
def test_read_idx_rejects_malformed(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad-idx"
    path.write_bytes(data)
    with pytest.raises(MtlensError, match=message) as err:
        read_idx(path)
    assert "bad-idx" in str(err.value)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(data)[:-6])  # truncated gzip stream
    with pytest.raises(MtlensError, match="gzip"):
        read_idx(tmp_path / "bad.gz")


def _write_mnist(folder: Path, n_train: int = 12, n_test: int = 6, gz: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        img_name, lab_name = MNIST_FILES[split]
        write_idx(folder / (img_name + (".gz" if gz else "")), images)
        write_idx(folder / lab_name, labels)  # labels raw: raw and gz mixed
        arrays[split + "_x"], arrays[split + "_y"] = images, labels
    return arrays


def test_load_mnist_official_files(tmp_path: Path) -> None:
    arrays = _write_mnist(tmp_path)
    d = load_mnist(tmp_path)
    assert d.source.kind == "official" and str(tmp_path) in d.source.detail
    assert d.train_x.shape == (12, 1, 28, 28) and d.test_x.shape == (6, 1, 28, 28) and d.train_x.dtype == torch.float32
    np.testing.assert_allclose(d.train_x[:, 0].numpy(), arrays["train_x"] / 255.0, rtol=0, atol=1e-7)
    assert d.train_y.tolist() == arrays["train_y"].tolist() and d.test_y.dtype == np.int64
    # torchvision's MNIST/raw layout finds the same files
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_mnist(raw, gz=False)
    d2 = load_mnist(tmp_path / "tv")
    assert d2.source.is_official and torch.equal(d2.train_x, d.train_x)


def test_load_mnist_rejects_inconsistent_files(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, dtype=np.uint8))
    with pytest.raises(MtlensError, match="holds 12 images but train-labels-idx1-ubyte holds 11 labels"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(12, 10, dtype=np.uint8))
    with pytest.raises(MtlensError, match="label 10 found, expected digits 0..9"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(12, dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((6, 27, 28), dtype=np.uint8))
    with pytest.raises(MtlensError, match=r"t10k-images-idx3-ubyte.gz: found uint8 images of shape \(6, 27, 28\)"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(MtlensError, match="t10k-images-idx3-ubyte .or .gz. are missing"):
        load_mnist(tmp_path)
    with pytest.raises(MtlensError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


def test_stand_in_shape_dtype_range_and_centring(tmp_path: Path) -> None:
    d = load_mnist(tmp_path)  # an empty data directory: no IDX files
    assert d.source.kind == "stand-in" and "load_digits" in d.source.detail
    desc = d.describe()
    assert (desc["num_images"], desc["image_shape"], desc["train_class_counts"][0]) == (1797, [1, 28, 28], 153)  # 178 zeros, 6/7 in train
    assert d.train_x.shape == (1540, 1, 28, 28) and d.test_x.shape == (257, 1, 28, 28)
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == np.int64
    x = torch.cat([d.train_x, d.test_x])
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # stratified 6:1 split keeps every class in both parts
    assert np.bincount(d.test_y, minlength=10).min() >= 24 and np.bincount(d.train_y, minlength=10).min() >= 140
    # ink stays within a 20x20 box, its centre of mass within a pixel of the 28x28 centre (13.5, 13.5)
    img = x[:, 0].numpy()
    mass = img.sum((1, 2))
    assert (mass > 0).all()
    r, c = np.mgrid[0:28, 0:28]
    com_r, com_c = (img * r).sum((1, 2)) / mass, (img * c).sum((1, 2)) / mass
    assert np.abs(com_r - 13.5).max() <= 0.5 + 1e-6 and np.abs(com_c - 13.5).max() <= 0.5 + 1e-6
    for k in range(0, len(img), 97):
        nz_r, nz_c = np.nonzero(img[k])
        assert nz_r.max() - nz_r.min() < 20 and nz_c.max() - nz_c.min() < 20
    assert stand_in_digits() is stand_in_digits()  # cached
