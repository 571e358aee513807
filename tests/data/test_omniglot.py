"""Omniglot loader: official folder and zip layouts, App. A.3 task order, per-character splits, missing files."""

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtlens import MtlensError
from mtlens.data.omniglot import ALPHABET_ORDER, OmniglotNotFound, build_omniglot, find_omniglot

# the first three tasks of App. A.3: Gujarati and Arcadian are background alphabets, Sylheti an evaluation one
PARTS = {"images_background": ["Gujarati", "Arcadian"], "images_evaluation": ["Sylheti"]}
CHARACTERS = {"Gujarati": 3, "Sylheti": 2, "Arcadian": 2}
DRAWINGS, SIDE = 10, 12


def _drawing(alphabet: str, char: int, k: int) -> np.ndarray:
    """Returns a recognisable white page with black ink: a bar whose row encodes (alphabet, char, k)."""
    page = np.full((SIDE, SIDE), 255, dtype=np.uint8)
    page[ALPHABET_ORDER.index(alphabet) % SIDE, :] = 0
    page[:, char] = 0
    page[SIDE - 1, k] = 0
    return page


def write_tree(root: Path) -> Path:
    """Writes the official layout <part>/<Alphabet>/characterNN/<id>_<drawer>.png (1-bit PNGs, as released)."""
    for part, alphabets in PARTS.items():
        for alphabet in alphabets:
            for c in range(CHARACTERS[alphabet]):
                folder = root / part / alphabet / f"character{c + 1:02d}"
                folder.mkdir(parents=True)
                for k in range(DRAWINGS):
                    Image.fromarray(_drawing(alphabet, c, k)).convert("1").save(folder / f"{c:04d}_{k + 1:02d}.png")
    return root


def zip_tree(tree: Path, out: Path) -> Path:
    out.mkdir()
    for part in PARTS:
        with zipfile.ZipFile(out / f"{part}.zip", "w") as zf:
            for path in sorted((tree / part).rglob("*.png")):
                zf.write(path, path.relative_to(tree).as_posix())
    return out


def test_folders_give_alphabets_in_the_seed_order(tmp_path: Path) -> None:
    data = build_omniglot(write_tree(tmp_path), n_tasks=3, test_fraction=0.2)
    assert data.names == ["Gujarati", "Sylheti", "Arcadian"]
    assert [t.num_classes for t in data.tasks] == [3, 2, 2]
    assert data.input_shapes == ((1, SIDE, SIDE),) * 3
    train, test = data.task("Gujarati")
    assert len(test) == 3 * 2 and len(train) == 3 * 8  # 20% of each character's 10 drawings
    assert np.bincount(test.targets[:, 0].numpy().astype(int)).tolist() == [2, 2, 2]
    x = train.x[train.targets[:, 0] == 1][0, 0].numpy()
    assert x.dtype == np.uint8 and x[:, 1].all() and x[3, 5] == 0  # ink is 1: character 1's column, paper is 0
    assert data.source.is_official


def test_zip_files_equal_folders_and_split_is_fixed(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree")
    a = build_omniglot(tree, n_tasks=3, test_fraction=0.1, seed=4)
    b = build_omniglot(zip_tree(tree, tmp_path / "zips"), n_tasks=3, test_fraction=0.1, seed=4)
    for pa, pb in zip(a.test + a.train, b.test + b.train):
        assert np.array_equal(pa.x.numpy(), pb.x.numpy()) and np.array_equal(pa.targets.numpy(), pb.targets.numpy())
    assert len(a.task(0)[1]) == 3  # 10% of 10 drawings for each of 3 characters
    # an alphabet's split depends on the seed and the alphabet only, not on the others loaded
    alone = build_omniglot(tree, alphabets=["Arcadian"], test_fraction=0.1, seed=4)
    assert np.array_equal(alone.test[0].x.numpy(), a.test[2].x.numpy())
    assert set(find_omniglot(tmp_path / "zips")) == set(PARTS)


def test_missing_files_and_alphabets(tmp_path: Path) -> None:
    with pytest.raises(OmniglotNotFound, match="images_background.*not found"):
        build_omniglot(tmp_path, n_tasks=2)
    tree = write_tree(tmp_path / "tree")
    with pytest.raises(MtlensError, match="alphabet\\(s\\) Tibetan, Old_Church_Slavonic_\\(Cyrillic\\) missing"):
        build_omniglot(tree, n_tasks=5)
    with pytest.raises(MtlensError, match="n_tasks must be >= 1"):
        build_omniglot(tree, n_tasks=0)
    with pytest.raises(MtlensError, match="n_tasks must be at most 50"):
        build_omniglot(tree, n_tasks=51)
    with pytest.raises(MtlensError, match="unknown: \\['Klingon'\\]"):
        build_omniglot(tree, alphabets=["Klingon"])
    assert len(ALPHABET_ORDER) == len(set(ALPHABET_ORDER)) == 50
