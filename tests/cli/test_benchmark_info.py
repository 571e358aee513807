"""`mtlens data info` on a dense benchmark: its tasks and split sizes, every file checked by its loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mtlens.cli import main


def test_data_info_of_a_benchmark_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):  # CityScapes' preprocessed layout, 7 classes, 4 x 6 pixels
        for i in range(n):
            for folder, arr in (("image", rng.random((4, 6, 3), dtype=np.float32)),
                                ("label", rng.integers(-1, 7, (4, 6)).astype(np.float32)),
                                ("depth", rng.random((4, 6, 1)).astype(np.float32))):
                (tmp_path / "cityscapes" / split / folder).mkdir(parents=True, exist_ok=True)
                np.save(tmp_path / "cityscapes" / split / folder / f"{i}.npy", arr)
    with pytest.raises(SystemExit) as exc:
        main(["data", "info", "cityscapes", "--data-dir", str(tmp_path), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert exc.value.code == 0
    assert info["splits"] == {"train": 3, "val": 2, "test": 2} and info["image_shape"] == [3, 4, 6]
    assert info["tasks"] == ["segmentation (segmentation)", "depth (depth)"] and info["source"].startswith("official")
    np.save(tmp_path / "cityscapes" / "train" / "depth" / "1.npy", np.full((4, 6, 1), np.nan, np.float32))
    with pytest.raises(SystemExit) as exc:
        main(["data", "info", "cityscapes", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "train/depth/1.npy" in err
