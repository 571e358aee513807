"""MPI3D: factor grids, the official-file loader (tiny npz files in the official format) and the stand-in.

The official files hold 1,036,800 images (12.7 GB), too big to write in a test, and the loader checks that
the first axis equals the product of the variant's factor sizes. So the npz reader is tested directly on
small arrays (test_npz.py), and the full loader is tested with the variant's size table monkeypatched to a small grid
(`_small_toy`): the same code path as with the real file, on 2*2*1*1*1*2*3 = 24 images.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data import create_factor_dataset, mpi3d
from mtlens.data.mpi3d import MPI3D

SMALL = (2, 2, 1, 1, 1, 2, 3)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)


@pytest.fixture
def _small_toy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrinks the toy variant's grid to SMALL so a complete official-format file has 24 images."""
    monkeypatch.setitem(mpi3d.VARIANTS, "toy", dataclasses.replace(mpi3d.VARIANTS["toy"], factor_sizes=SMALL))


# ---------------------------------------------------------------------------------------------- grids
@pytest.mark.parametrize(
    "name, sizes, n",
    [
        ("mpi3d_toy", (6, 6, 2, 3, 3, 40, 40), 1_036_800),
        ("mpi3d_realistic", (6, 6, 2, 3, 3, 40, 40), 1_036_800),
        ("mpi3d_real", (6, 6, 2, 3, 3, 40, 40), 1_036_800),
        ("mpi3d_complex", (4, 4, 2, 3, 3, 40, 40), 460_800),
    ],
)
def test_grid_sizes(name: str, sizes: tuple[int, ...], n: int) -> None:
    ds = create_factor_dataset(name)
    assert ds.factor_sizes == sizes and len(ds) == n and ds.image_shape == (3, 64, 64)
    assert ds.factor_names[0] == "object_color" and ds.factor_names[-1] == "vertical_axis"
    np.testing.assert_array_equal(ds.factor_value_table[5], np.arange(40.0))


def test_index_factor_round_trip_matches_readme_formula() -> None:
    ds = MPI3D("toy")
    idx = np.array([0, 1, 39, 40, 1599, 1600, 4800, 14400, 28800, 172800, 1_036_799])
    f = ds.factors(idx)
    np.testing.assert_array_equal(ds.index_of(f), idx)
    # the README's flat index: C order over (6, 6, 2, 3, 3, 40, 40)
    strides = np.array([172800, 28800, 14400, 4800, 1600, 40, 1])
    np.testing.assert_array_equal(f @ strides, idx)
    assert f[-1].tolist() == [5, 5, 1, 2, 2, 39, 39]
    assert ds.factor_values([1601]).tolist() == [[0, 0, 0, 0, 1, 0, 1]]


def test_unknown_variant_is_named() -> None:
    with pytest.raises(MtlensError, match="unknown MPI3D variant 'cartoon'; choose one of: toy, realistic, real, complex"):
        MPI3D("cartoon")


# ---------------------------------------------------------------------------------------------- loader
def test_official_loader_reads_the_file_in_factor_order(tmp_path: Path, _small_toy: None) -> None:
    imgs = _images(24, seed=4)
    np.savez(tmp_path / "mpi3d_toy.npz", images=imgs)
    ds = MPI3D("toy", data_dir=tmp_path)
    assert ds.name == "mpi3d_toy" and not ds.is_stand_in and ds.source.is_official
    assert "mpi3d_toy.npz" in ds.source.detail and "memory-mapped" in ds.source.detail
    assert len(ds) == 24
    idx = np.array([23, 0, 7, 7])
    got = ds.images(idx)
    want = torch.from_numpy(imgs[idx]).permute(0, 3, 1, 2).float() / 255
    assert got.shape == (4, 3, 64, 64) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    # factors of image 7 in the C-order grid (2, 2, 1, 1, 1, 2, 3)
    assert ds.factors([7]).tolist() == [[0, 1, 0, 0, 0, 0, 1]]
    assert ds.describe()["stand_in"] is False


def test_official_loader_from_env_and_subfolder(tmp_path: Path, _small_toy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mpi3d_toy").mkdir()
    np.savez_compressed(tmp_path / "mpi3d_toy" / "mpi3d_toy.npz", images=_images(24, seed=5))
    monkeypatch.setenv("MTLENS_DATA", str(tmp_path))
    ds = MPI3D("toy", cache_dir=tmp_path / "cache")
    assert ds.source.is_official and "decompressed once" in ds.source.detail
    assert ds.images([5]).shape == (1, 3, 64, 64)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"imgs": _images(24)}, r"missing key\(s\) images"),
        ({"images": _images(23)}, r"'images' has shape \(23, 64, 64, 3\), expected \(24, 64, 64, 3\)"),
        ({"images": np.zeros((24, 64, 64), np.uint8)}, r"has shape \(24, 64, 64\), expected \(24, 64, 64, 3\)"),
        ({"images": np.zeros((24, 64, 64, 3), np.float32)}, r"'images' has dtype float32, expected uint8"),
    ],
)
def test_malformed_files_are_rejected(tmp_path: Path, _small_toy: None, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "mpi3d_toy.npz", **arrays)
    with pytest.raises(MtlensError, match=message) as err:
        MPI3D("toy", data_dir=tmp_path)
    assert "mpi3d_toy.npz" in str(err.value) and "\n" not in str(err.value)


def test_missing_data_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(MtlensError, match="does not exist"):
        MPI3D("toy", data_dir=tmp_path / "nope")


# ---------------------------------------------------------------------------------------------- stand-in
def test_stand_in_is_named_as_such(tmp_path: Path) -> None:
    ds = create_factor_dataset("mpi3d_real", data_dir=tmp_path)
    assert ds.is_stand_in and ds.name == "mpi3d_real (stand-in)"
    assert ds.source.kind == "stand-in" and not ds.source.is_official
    assert "not the real MPI3D" in ds.source.detail and "mpi3d_real.npz not found in" in ds.source.detail
    desc = ds.describe()
    assert "stand-in" in desc["name"] and "stand-in" in desc["source"] and desc["stand_in"] is True
    assert desc["factors"][4]["value_names"] == ["purple", "sea green", "salmon"] and "value_names" not in desc["factors"][5]
    assert "stand-in" in repr(ds)


def test_stand_in_is_deterministic_and_in_range() -> None:
    ds = MPI3D("toy")
    idx = np.random.default_rng(0).integers(0, len(ds), size=64)
    a = ds.images(idx)
    b = MPI3D("toy").images(idx[::-1].copy()).flip(0)  # other order, other batch: same images
    assert a.shape == (64, 3, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(ds.images(idx[:1]), a[:1])


@pytest.mark.parametrize("variant", ["toy", "complex"])
def test_every_factor_changes_the_image(variant: str) -> None:
    ds = MPI3D(variant)
    base = np.array([1, 1, 1, 1, 1, 20, 10])
    ref = ds.sample_observations_from_factors(base[None])[0]
    for k, size in enumerate(ds.factor_sizes):
        rows = np.repeat(base[None], size, axis=0)
        rows[:, k] = np.arange(size)
        imgs = ds.sample_observations_from_factors(rows)
        others = [imgs[i] for i in range(size) if i != base[k]]
        # every other value of the factor gives a different picture; a clearly different one at the extremes
        assert all(not torch.equal(o, ref) for o in others), ds.factor_names[k]
        far = max((imgs[i] - ref).abs().sum().item() for i in range(size))
        assert far > 10.0, (ds.factor_names[k], far)  # > 10: at least ~20 pixels change fully


def test_stand_in_colours_follow_the_toy_sheet() -> None:
    ds = MPI3D("toy")
    # large red cone, centre camera, sea-green rail, arm upright: the brightest object pixel is the named red
    img = ds.images(ds.index_of([[2, 0, 1, 1, 1, 20, 0]]))[0]
    red = img[:, :30]  # the object is in the upper half
    score = red[0] - red[1:].max(0).values
    r, c = np.unravel_index(int(score.argmax()), score.shape)
    assert img[0, r, c] > 0.75 and img[1, r, c] < 0.1 and img[2, r, c] < 0.1
    # the rail of background_color=purple is purple-ish: blue > red > green, like the sheet's (100, 75, 141)
    purple = ds.images(ds.index_of([[2, 0, 1, 1, 0, 20, 0]]))[0]
    sea = ds.images(ds.index_of([[2, 0, 1, 1, 1, 20, 0]]))[0]
    diff = (purple - sea).abs().sum(0)
    rail = diff > 0.05
    mean = purple[:, rail].mean(1)
    assert mean[2] > mean[0] > mean[1]
    # floor grey 52 as on the sheet
    assert abs(float(img[:, 0, 0].mean()) * 255 - 52) < 1.5
