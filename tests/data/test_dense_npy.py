"""NYU-v2 and CityScapes loaders on small trees in the preprocessed (MTAN / LibMTL) layout; their bad-input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens.data import available_datasets, benchmark_splits, create_benchmark
from mtlens.data.dense_npy import NYUV2, NpyDenseDataset
from mtlens.data.multitask import make_loader
from mtlens.errors import MtlensError

H, W = 6, 8


def write_tree(root: Path, name: str = "nyuv2", n: dict[str, int] | None = None, label_dir: str = "label", seed: int = 0) -> Path:
    """Writes a tiny preprocessed tree: float32 images in [0, 1], float labels with -1, depth with 0s, unit normals."""
    rng = np.random.default_rng(seed)
    classes = 13 if name == "nyuv2" else 7
    for split, count in (n or {"train": 3, "val": 2}).items():
        for i in range(count):
            files = {
                "image": rng.random((H, W, 3), dtype=np.float32),
                label_dir: rng.integers(-1, classes, (H, W)).astype(np.float32),
                "depth": (rng.random((H, W, 1)) * 5 * (rng.random((H, W, 1)) > 0.2)).astype(np.float32),
            }
            if name == "nyuv2":
                v = rng.normal(size=(H, W, 3))
                v /= np.linalg.norm(v, axis=-1, keepdims=True)
                v[0, :3] = 0.0  # pixels without a normal
                files["normal"] = v.astype(np.float32)
            for folder, arr in files.items():
                (root / split / folder).mkdir(parents=True, exist_ok=True)
                np.save(root / split / folder / f"{i}.npy", arr)
    return root


def test_nyuv2_reads_the_layout(tmp_path: Path) -> None:
    root = write_tree(tmp_path)
    ds = create_benchmark("nyuv2", "train", data_dir=root)
    assert len(ds) == 3 and ds.image_size == (H, W) and ds.source.is_official
    assert [(t.name, t.kind, t.num_classes) for t in ds.tasks] == [
        ("segmentation", "segmentation", 13), ("depth", "depth", None), ("normal", "normal", None)]
    batch = ds.__getitems__([2, 0])
    assert batch["x"].shape == (2, 3, H, W) and batch["x"].dtype == torch.float32
    y = batch["targets"]
    assert (y["segmentation"].shape, y["segmentation"].dtype) == ((2, H, W), torch.int64)
    assert y["depth"].shape == (2, 1, H, W) and y["normal"].shape == (2, 3, H, W)
    img = np.load(root / "train/image/2.npy")
    np.testing.assert_array_equal(batch["x"][0].numpy(), np.moveaxis(img, -1, 0))
    np.testing.assert_array_equal(y["segmentation"][1].numpy(), np.load(root / "train/label/0.npy").astype(np.int64))
    np.testing.assert_array_equal(y["normal"][0].numpy(), np.moveaxis(np.load(root / "train/normal/2.npy"), -1, 0))
    # the Trainer's loader takes the dataset as it is
    batches = list(make_loader(ds, 2))
    assert [b["x"].shape[0] for b in batches] == [2, 1]
    splits = benchmark_splits("nyuv2", data_dir=root)
    assert (len(splits["train"]), len(splits["val"])) == (3, 2) and splits["test"] is splits["val"]
    assert {"nyuv2", "cityscapes", "celeba", "shapes3d_dense"} <= set(available_datasets("benchmark"))


def test_cityscapes_label_7_folder_and_resize(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "data" / "cityscapes", "cityscapes", label_dir="label_7")
    ds = create_benchmark("cityscapes", "test", data_dir=tmp_path / "data", resize=(12, 16))  # finds cityscapes/
    assert [t.name for t in ds.tasks] == ["segmentation", "depth"] and len(ds) == 2
    batch = ds.__getitems__([0])
    assert batch["x"].shape == (1, 3, 12, 16) and batch["targets"]["segmentation"].shape == (1, 12, 16)
    label = np.load(root / "val/label_7/0.npy")
    np.testing.assert_array_equal(batch["targets"]["segmentation"][0, ::2, ::2].numpy(), label)  # nearest: exact labels
    assert set(np.unique(batch["targets"]["depth"])) <= set(np.unique(np.load(root / "val/depth/0.npy")))


def bad(tmp_path: Path, edit, match: str, check: str = "full") -> str:  # type: ignore[no-untyped-def]
    root = write_tree(tmp_path)
    edit(root)
    with pytest.raises(MtlensError, match=match) as err:
        ds = NpyDenseDataset(NYUV2, root, "train", check=check)
        ds.__getitems__(list(range(len(ds))))
    assert "\n" not in str(err.value)
    return str(err.value)


def test_missing_split_folder(tmp_path: Path) -> None:
    root = write_tree(tmp_path, n={"train": 2})
    with pytest.raises(MtlensError, match=r"split folder '.*val' is missing"):
        create_benchmark("nyuv2", "val", data_dir=root)
    with pytest.raises(MtlensError, match="nyuv2 needs its preprocessed folders"):
        create_benchmark("nyuv2", "train", data_dir=None)


def test_label_of_another_size_names_both_files(tmp_path: Path) -> None:
    msg = bad(tmp_path, lambda r: np.save(r / "train/label/1.npy", np.zeros((H, W + 2), np.float32)), "label/1.npy")
    assert "segmentation is 6 x 10 but its image" in msg and "image/1.npy is 6 x 8" in msg


def test_depth_with_nan_is_refused_before_training(tmp_path: Path) -> None:
    def nan_depth(root: Path) -> None:
        d = np.load(root / "train/depth/2.npy")
        d[1, 1] = np.nan
        np.save(root / "train/depth/2.npy", d)

    assert "depth/2.npy: depth contains NaN" in bad(tmp_path / "a", nan_depth, "NaN")
    # header-only checking finds it when the batch is read, before the batch reaches a model
    assert "depth/2.npy" in bad(tmp_path / "b", nan_depth, "NaN", check="headers")


@pytest.mark.parametrize("edit,match", [
    (lambda r: (r / "train/normal/1.npy").unlink(), r"normal/1.npy is missing: every image needs its normal file"),
    (lambda r: (r / "train/image/1.npy").rename(r / "train/image/7.npy"), r"image/1.npy is missing \(the images must be numbered 0..7\)"),
    (lambda r: np.save(r / "train/label/0.npy", np.full((H, W), 13, np.float32)), r"labels range 13..13, expected -1 \(unlabelled\) or 0..12"),
    (lambda r: np.save(r / "train/label/0.npy", np.full((H, W), 0.5, np.float32)), "whole numbers"),
    (lambda r: np.save(r / "train/image/0.npy", np.full((H, W, 3), 255, np.float32)), r"image values range 255..255, expected floats in \[0, 1\]"),
    (lambda r: np.save(r / "train/normal/0.npy", np.full((H, W, 3), 2, np.float32)), "normal components range 2..2"),
    (lambda r: np.save(r / "train/depth/0.npy", -np.ones((H, W, 1), np.float32)), "depth has negative values"),
    (lambda r: np.save(r / "train/depth/0.npy", np.ones((H, W, 2), np.float32)), r"depth has shape \(6, 8, 2\)"),
    (lambda r: (r / "train/depth/0.npy").write_bytes((r / "train/depth/0.npy").read_bytes()[:100]), "not a readable .npy array"),
    (lambda r: np.save(r / "train/image/2.npy", np.zeros((H + 1, W, 3), np.float32)), r"image is 7 x 8, the others are 6 x 8"),
])
def test_bad_files_are_named(tmp_path: Path, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    bad(tmp_path, edit, match)
