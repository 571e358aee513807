"""Shapes3D: factor grid, the official-file loader (against small files in the real layout) and the renderer."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mtlens.data import create_factor_dataset
from mtlens.data.shapes3d import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    NUM_IMAGES,
    Shapes3D,
    Shapes3DFile,
    readme_value_table,
)
from mtlens.data.shapes3d_render import CAPSULE, CUBE, CYLINDER, FLOOR, OBJECT, SPHERE, WALL, Scene, trace
from mtlens.errors import MtlensError

MARKED = (0, 1, 16, 12345, 250_000, NUM_IMAGES - 1)


def grid_labels(table: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """Returns the [480000, 6] float64 labels of the C-order factor grid."""
    table = table or readme_value_table()
    cls = np.stack(np.unravel_index(np.arange(NUM_IMAGES), FACTOR_SIZES), axis=1)
    return np.stack([table[k][cls[:, k]] for k in range(len(FACTOR_SIZES))], axis=1)


def marked_image(i: int) -> np.ndarray:
    """Returns a recognisable uint8 image for row i (three channels differ, so a transpose would show)."""
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[..., 0] = i % 251
    img[..., 1] = (i // 251) % 251
    img[..., 2] = np.arange(64, dtype=np.uint8)[None, :]
    img[i % 64, :, 1] = 255
    return img


def write_official(
    path: Path,
    labels: np.ndarray | None = None,
    images_shape: tuple[int, ...] = (NUM_IMAGES, 64, 64, 3),
    images_dtype: type = np.uint8,
    with_labels: bool = True,
) -> Path:
    """Writes an h5 in the official layout: all-zero chunked gzip images except the MARKED rows (tiny on disk)."""
    with h5py.File(path, "w") as f:
        chunks = (1,) + tuple(images_shape[1:])
        ds = f.create_dataset("images", shape=images_shape, dtype=images_dtype, chunks=chunks, compression="gzip")
        for i in MARKED:
            if i < images_shape[0] and images_shape[1:] == (64, 64, 3):
                ds[i] = marked_image(i)
        if with_labels:
            lab = grid_labels() if labels is None else labels
            f.create_dataset("labels", data=lab, chunks=(8192, lab.shape[1]), compression="gzip", shuffle=True)
    return path


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes3d")
    write_official(root / "3dshapes.h5")
    assert (root / "3dshapes.h5").stat().st_size < 5_000_000  # the official layout, mostly empty chunks
    return root


@pytest.fixture(scope="module")
def rendered() -> Shapes3D:
    return Shapes3D()


# ---------------------------------------------------------------- the factor grid
def test_factor_grid_sizes_and_values() -> None:
    ds = Shapes3D()
    assert ds.factor_names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    assert ds.factor_sizes == (10, 10, 10, 8, 4, 15)
    assert len(ds) == 480_000
    assert ds.image_shape == (3, 64, 64)
    table = ds.factor_value_table
    np.testing.assert_allclose(table[0], np.arange(10) / 9)
    np.testing.assert_allclose(table[3][[0, 1, 7]], [0.75, 0.75 + 0.5 / 7, 1.25])
    np.testing.assert_allclose(table[4], [0, 1, 2, 3])
    np.testing.assert_allclose(table[5][[0, 7, 14]], [-30.0, 0.0, 30.0])


def test_index_factor_round_trip_and_c_order() -> None:
    ds = Shapes3D()
    idx = np.random.default_rng(0).integers(0, len(ds), size=500)
    f = ds.factors(idx)
    np.testing.assert_array_equal(ds.index_of(f), idx)
    # orientation is fastest, floor hue slowest
    np.testing.assert_array_equal(ds.factors([1])[0], [0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(ds.factors([15])[0], [0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(ds.factors([48_000])[0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(ds.factors([479_999])[0], [9, 9, 9, 7, 3, 14])
    np.testing.assert_allclose(ds.factor_values([479_999])[0], [1.0, 1.0, 1.0, 1.25, 3.0, 30.0])


def test_registered_and_renderer_source(tmp_path: Path) -> None:
    ds = create_factor_dataset("shapes3d", data_dir=tmp_path)
    assert isinstance(ds, Shapes3D)
    assert ds.source.kind == "renderer"
    assert "3dshapes.h5 not found in" in ds.source.detail and str(tmp_path) in ds.source.detail


# ---------------------------------------------------------------- the official file
def test_loader_reads_official_layout(official_dir: Path) -> None:
    ds = create_factor_dataset("shapes3d", data_dir=official_dir)
    assert ds.source.kind == "official" and ds.source.detail == str(official_dir / "3dshapes.h5")
    with h5py.File(official_dir / "3dshapes.h5", "r") as f:
        assert set(f.keys()) == {"images", "labels"}
        assert f["images"].dtype == np.uint8 and f["labels"].dtype == np.float64
        order = [250_000, 0, NUM_IMAGES - 1, 12345, 16, 1, 12345]
        np.testing.assert_array_equal(f["labels"][sorted(set(order))], ds.factor_values(sorted(set(order))))
    imgs = ds.images(order)
    assert imgs.shape == (7, 3, 64, 64) and imgs.dtype == torch.float32
    for row, i in enumerate(order):
        want = torch.from_numpy(marked_image(i)).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(imgs[row], want, rtol=0, atol=0)
    # an unmarked row is all zeros (the file's fill value)
    assert ds.images([2]).abs().sum().item() == 0.0


def test_loader_value_table_comes_from_labels(tmp_path: Path) -> None:
    # hues labelled k / 10 instead of linspace(0, 1, 10): the loader reports the file's own values
    table = list(readme_value_table())
    table[0] = table[1] = table[2] = np.arange(10) / 10
    write_official(tmp_path / "3dshapes.h5", labels=grid_labels(tuple(table)))
    ds = Shapes3D(tmp_path)
    np.testing.assert_allclose(ds.factor_value_table[0], np.arange(10) / 10)
    np.testing.assert_allclose(ds.factor_values([NUM_IMAGES - 1])[0], [0.9, 0.9, 0.9, 1.25, 3.0, 30.0])


def test_loader_reads_many_rows_in_slices(official_dir: Path) -> None:
    f = Shapes3DFile(official_dir / "3dshapes.h5")
    idx = np.concatenate([np.arange(0, 40), [12345, 12345, 0], np.arange(249_990, 250_010), [NUM_IMAGES - 1]])
    rng = np.random.default_rng(1)
    idx = rng.permutation(idx)
    got = f.read(idx)
    with h5py.File(official_dir / "3dshapes.h5", "r") as h:
        want = np.stack([h["images"][int(i)] for i in idx])
    np.testing.assert_array_equal(got, want)
    f.close()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(with_labels=False), "missing key(s) labels"),
        (dict(images_shape=(NUM_IMAGES, 64, 64)), "'images' has shape (480000, 64, 64), expected (480000, 64, 64, 3)"),
        (dict(images_shape=(1000, 64, 64, 3)), "'images' has shape (1000, 64, 64, 3)"),
        (dict(images_dtype=np.float32), "'images' has dtype float32, expected unsigned integer"),
        (dict(images_dtype=np.uint16), "'images' has dtype uint16, expected uint8"),
    ],
)
def test_loader_rejects_malformed_layout(tmp_path: Path, kwargs: dict, message: str) -> None:
    path = write_official(tmp_path / "3dshapes.h5", **kwargs)
    with pytest.raises(MtlensError) as err:
        Shapes3D(tmp_path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_loader_rejects_labels_off_the_grid(tmp_path: Path) -> None:
    # rows in Fortran order (floor hue fastest) instead of C order
    cls = np.stack(np.unravel_index(np.arange(NUM_IMAGES), FACTOR_SIZES, order="F"), axis=1)
    table = readme_value_table()
    f_order = np.stack([table[k][cls[:, k]] for k in range(6)], axis=1)
    path = write_official(tmp_path / "3dshapes.h5", labels=f_order)
    with pytest.raises(MtlensError, match="C order") as err:
        Shapes3D(tmp_path)
    assert str(path) in str(err.value)


def test_loader_rejects_a_few_wrong_rows(tmp_path: Path) -> None:
    labels = grid_labels()
    labels[:, 3] = np.roll(labels[:, 3], 15)  # scale shifted by one shape sweep: sweeps fine, rows wrong
    path = write_official(tmp_path / "3dshapes.h5", labels=labels)
    with pytest.raises(MtlensError, match="labels .* are") as err:
        Shapes3D(tmp_path)
    assert str(path) in str(err.value)


def test_loader_rejects_wrong_label_width_and_non_hdf5(tmp_path: Path) -> None:
    path = write_official(tmp_path / "3dshapes.h5", labels=grid_labels()[:, :5])
    with pytest.raises(MtlensError, match=r"'labels' has shape \(480000, 5\), expected \(480000, 6\)"):
        Shapes3D(tmp_path)
    path.write_bytes(b"not an hdf5 file")
    with pytest.raises(MtlensError, match="cannot be read as HDF5") as err:
        Shapes3D(tmp_path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- the renderer
def test_renderer_images_are_deterministic_float_rgb(rendered: Shapes3D) -> None:
    idx = np.random.default_rng(3).integers(0, len(rendered), size=12)
    a = rendered.images(idx)
    b = Shapes3D().images(idx)
    assert a.shape == (12, 3, 64, 64) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the same image asked twice in one batch is the same
    torch.testing.assert_close(rendered.images([idx[0], idx[0]])[1], a[0], rtol=0, atol=0)


def _index(fh: int = 0, wh: int = 6, oh: int = 3, scale: int = 3, shape: int = 0, ori: int = 7) -> int:
    return int(np.ravel_multi_index((fh, wh, oh, scale, shape, ori), FACTOR_SIZES))


def _region(shape: int, scale_idx: int = 3, ori_idx: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Returns the per-pixel sub-sample fractions of the floor and the object at the given factors."""
    scale = readme_value_table()[3][scale_idx]
    ori = readme_value_table()[5][ori_idx]
    cls, _ = trace(Scene(), shape, scale, ori)
    return (cls == FLOOR).mean(0), (cls == OBJECT).mean(0)


def test_floor_hue_changes_only_floor_pixels(rendered: Shapes3D) -> None:
    a, b = rendered.images([_index(fh=0), _index(fh=5)])
    changed = (a - b).abs().amax(0) > 1e-6
    floor, _ = _region(CUBE)
    assert changed.any()
    assert not changed[torch.from_numpy(floor == 0)].any()  # no pixel without floor changes
    assert changed[torch.from_numpy(floor == 1)].all()  # every all-floor pixel changes
    rows = np.flatnonzero(changed.any(1).numpy())
    assert rows.min() > 32  # the floor lies in the lower half of the image
    assert changed[-1].all()  # the bottom row is all floor


def test_object_hue_changes_only_object_pixels(rendered: Shapes3D) -> None:
    a, b = rendered.images([_index(oh=0), _index(oh=4)])
    changed = (a - b).abs().amax(0) > 1e-6
    _, obj = _region(CUBE)
    assert changed.any()
    assert not changed[torch.from_numpy(obj == 0)].any()
    assert changed[torch.from_numpy(obj == 1)].all()
    # the object sits in the middle of the image
    ys, xs = np.nonzero(changed.numpy())
    assert 24 <= xs.mean() <= 40 and 32 <= ys.mean() <= 56


def test_wall_hue_changes_the_wall_band(rendered: Shapes3D) -> None:
    a, b = rendered.images([_index(wh=0), _index(wh=5)])
    changed = (a - b).abs().amax(0) > 1e-6
    cls, _ = trace(Scene(), CUBE, readme_value_table()[3][3], 0.0)
    wall = torch.from_numpy((cls == WALL).mean(0))
    assert not changed[wall == 0].any() and changed[wall == 1].all()
    assert not changed[:8].any()  # the top rows are sky


def test_scale_grows_the_object() -> None:
    for shape in (CUBE, CYLINDER, SPHERE, CAPSULE):
        areas = [_region(shape, scale_idx=s)[1].sum() for s in range(8)]
        assert np.all(np.diff(areas) > 0), (shape, areas)
        # area grows roughly with scale squared (perspective makes it a little faster)
        assert 1.5 * (1.25 / 0.75) ** 2 > areas[-1] / areas[0] > 0.8 * (1.25 / 0.75) ** 2


def test_shapes_have_different_silhouettes() -> None:
    masks = [_region(s)[1] > 0.5 for s in (CUBE, CYLINDER, SPHERE, CAPSULE)]
    for i in range(4):
        assert masks[i].sum() > 40
        for j in range(i + 1, 4):
            assert (masks[i] != masks[j]).sum() >= 20, (i, j)
    # the capsule is the tallest shape, the sphere the smallest
    heights = [np.flatnonzero(m.any(1)).size for m in masks]
    assert heights[3] == max(heights)
    assert masks[2].sum() == min(m.sum() for m in masks)


def test_orientation_turns_the_room() -> None:
    # at -30 degrees the back/right corner is in view right of centre, at +30 the back/left corner left of it
    for ori_idx, side in ((0, "right"), (14, "left")):
        cls, _ = trace(Scene(), CUBE, 1.0, readme_value_table()[5][ori_idx])
        wall_top = np.array([np.flatnonzero(col)[0] for col in (cls[0] == WALL).T])
        corner = int(np.argmax(wall_top))  # the far corner is where the wall's top edge is lowest
        assert (corner > 36) if side == "right" else (corner < 28), (ori_idx, corner)


def test_sample_factors_and_renderer_cache_lookup(rendered: Shapes3D) -> None:
    f = rendered.sample_factors(4, np.random.default_rng(0))
    imgs = rendered.sample_observations_from_factors(f)
    assert imgs.shape == (4, 3, 64, 64)
    assert rendered.renderer is not None
    idx = rendered.index_of(f)
    torch.testing.assert_close(imgs, rendered.images(idx), rtol=0, atol=0)
    assert FACTOR_NAMES[4] == "shape"
