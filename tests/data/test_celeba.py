"""CelebA on a small tree in the official layout (folder and zip), with and without landmarks; bad files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mtlens.data import create_benchmark
from mtlens.data.celeba import ATTRIBUTES, LANDMARKS, CelebA
from mtlens.errors import MtlensError

PARTS = [0, 0, 0, 1, 2, 0]  # 4 train, 1 val, 1 test


def write_celeba(root: Path, zipped: bool = False, header: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Writes 6 aligned images (178 x 218 JPEGs) and the three list files; returns (attributes, landmarks)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(PARTS))]
    attrs = rng.choice([-1, 1], size=(len(names), 40))
    marks = rng.integers(60, 160, size=(len(names), 10))
    blobs = {}
    for i, name in enumerate(names):
        path = root / name
        Image.fromarray(np.full((218, 178, 3), 40 * i, np.uint8)).save(path, quality=95)
        blobs[name] = path.read_bytes()
        path.unlink()
    if zipped:
        with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as z:
            for name, data in blobs.items():
                z.writestr(f"img_align_celeba/{name}", data)
    else:
        (root / "img_align_celeba").mkdir()
        for name, data in blobs.items():
            (root / "img_align_celeba" / name).write_bytes(data)
    rows = [f"{n} " + " ".join(f"{v:2d}" for v in a) for n, a in zip(names, attrs)]  # the official double spaces
    (root / "list_attr_celeba.txt").write_text(f"{len(names)}\n" + " ".join(header or ATTRIBUTES) + " \n" + "\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, PARTS)))
    lm_rows = [f"{n} " + " ".join(f"{v:4d}" for v in m) for n, m in zip(names, marks)]
    (root / "list_landmarks_align_celeba.txt").write_text(f"{len(names)}\n" + " ".join(LANDMARKS) + "\n" + "\n".join(lm_rows) + "\n")
    return attrs, marks


@pytest.mark.parametrize("zipped", [False, True])
def test_official_layout(tmp_path: Path, zipped: bool) -> None:
    attrs, marks = write_celeba(tmp_path / "celeba", zipped)
    train = create_benchmark("celeba", "train", data_dir=tmp_path, landmarks=True, image_size=32)  # finds celeba/
    assert len(train) == 4 and len(CelebA(tmp_path, "val")) == 1 and len(CelebA(tmp_path, "test")) == 1
    assert [t.name for t in train.tasks] == [*ATTRIBUTES, "landmarks"] and train.tasks[0].kind == "binary"
    batch = train.__getitems__([3, 0])
    assert batch["x"].shape == (2, 3, 32, 32) and batch["targets"].shape == (2, 40)
    rows = [5, 0]  # the 4th train image is the 6th file (files 4 and 5 are val and test)
    np.testing.assert_array_equal(batch["targets"].numpy(), (attrs[rows] > 0).astype(np.float32))
    expected = marks[rows] / np.tile([178.0, 218.0], 5)
    np.testing.assert_allclose(batch["landmarks"].numpy(), expected, rtol=1e-6)
    assert abs(float(batch["x"][0].mean()) - 200 / 255) < 0.02  # the decoded grey level
    native = CelebA(tmp_path, "train", image_size=None)
    assert native.__getitems__([0])["x"].shape == (1, 3, 218, 178) and len(native.tasks) == 40


def test_header_that_is_not_the_40_names(tmp_path: Path) -> None:
    header = list(ATTRIBUTES)
    header[4] = "Bald_Head"
    write_celeba(tmp_path, header=header)
    with pytest.raises(MtlensError, match=r"list_attr_celeba.txt: line 2 must list the 40 official column names; column 5 is 'Bald_Head', expected 'Bald'"):
        CelebA(tmp_path)
    write_celeba(tmp_path / "short", header=list(ATTRIBUTES[:39]))
    with pytest.raises(MtlensError, match="column 40 is 'nothing', expected 'Young'"):
        CelebA(tmp_path / "short")


def test_bad_celeba_files(tmp_path: Path) -> None:
    write_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(MtlensError, match="image 000002.jpg of the train split is missing"):
        CelebA(tmp_path)
    assert len(CelebA(tmp_path, "val")) == 1  # other splits still load
    text = (tmp_path / "list_attr_celeba.txt").read_text().replace("000003.jpg  1", "000003.jpg  0").replace("000003.jpg -1", "000003.jpg  0")
    (tmp_path / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(MtlensError, match="000003.jpg has 0 for 5_o_Clock_Shadow; values are -1 or 1"):
        CelebA(tmp_path, "val")
    lines = (tmp_path / "list_eval_partition.txt").read_text().splitlines()
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines[:-1]) + "\n000006.jpg 3\n")
    (tmp_path / "list_attr_celeba.txt").write_text("\n".join(text.splitlines()[:-1]) + "\n")
    with pytest.raises(MtlensError, match="announces 6 images but 5 rows follow"):
        CelebA(tmp_path, "val")
    with pytest.raises(MtlensError, match="celeba needs its official files"):
        CelebA(None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MtlensError, match="list_attr_celeba.txt is missing"):
        CelebA(empty)
