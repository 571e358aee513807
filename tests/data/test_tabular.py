from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from mtlens import MtlensError
from mtlens.data import create_task_data
from mtlens.data.tabular import UCI_TABLE, build_tabular, read_table_csv


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTLENS_DATA", raising=False)


def _write_ecoli(path: Path, rows_per_class: int = 6) -> np.ndarray:
    """Writes a tiny ecoli-shaped CSV: 7 features (the 4th constant), 8 text classes; returns the features."""
    rng = np.random.default_rng(0)
    classes = ["cp", "im", "imL", "imS", "imU", "om", "omL", "pp"]
    feats = rng.uniform(-3, 5, size=(8 * rows_per_class, 7)).round(3)
    feats[:, 3] = 0.48
    lines = ["f1,f2,f3,f4,f5,f6,f7,site"]
    for i, row in enumerate(feats):
        lines.append(",".join(str(v) for v in row) + "," + classes[i % 8])
    path.write_text("\n".join(lines) + "\n")
    return feats


def test_bundled_widths_classes_and_split_sizes() -> None:
    g = build_tabular()  # no data directory: the three bundled tables, the other seven named as missing
    shapes = dict(zip(g.names, g.input_shapes))
    classes = {t.name: t.num_classes for t in g.tasks}
    assert shapes == {"breast_cancer": (30,), "iris": (4,), "wine": (13,)}
    assert classes == {"breast_cancer": 2, "iris": 3, "wine": 3} and all(t.kind == "multiclass" for t in g.tasks)
    sizes = {t.name: (len(tr), len(te)) for t, tr, te in zip(g.tasks, g.train, g.test)}
    assert sizes == {"breast_cancer": (455, 114), "iris": (120, 30), "wine": (142, 36)}
    # stratified: iris's 50/50/50 classes give 10 of each in test
    iris_test = g.task("iris")[1]
    assert np.bincount(iris_test.targets[:, 0].long().numpy()).tolist() == [10, 10, 10]
    assert g.info["missing"] == ["australian.csv", "ecoli.csv", "german.csv", "heart.csv", "hepatitis.csv", "pima.csv", "yeast.csv"]
    assert g.source.kind == "stand-in" and "missing australian.csv" in g.source.detail
    # the split is fixed by its seed
    again = build_tabular(datasets=["iris"])
    assert torch.equal(again.train[0].x, g.task("iris")[0].x) and again.source.kind == "official"
    assert not torch.equal(build_tabular(datasets=["iris"], seed=1).train[0].x, again.train[0].x)


def test_min_max_scaling_on_train() -> None:
    g = build_tabular(datasets=["iris", "wine"])
    for tr in g.train:
        assert torch.equal(tr.x.min(0).values, torch.zeros(tr.x.shape[1]))
        assert torch.equal(tr.x.max(0).values, torch.ones(tr.x.shape[1]))
    # both parts are scaled with the training part's range: recompute from the raw iris table
    raw, y = load_iris(return_X_y=True)
    train_idx, test_idx = train_test_split(np.arange(150), test_size=0.2, random_state=0, stratify=y)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    lo, hi = raw[train_idx].min(0), raw[train_idx].max(0)
    train, test = g.task("iris")
    np.testing.assert_allclose(train.x.numpy(), (raw[train_idx] - lo) / (hi - lo), atol=1e-6)
    np.testing.assert_allclose(test.x.numpy(), (raw[test_idx] - lo) / (hi - lo), atol=1e-6)
    np.testing.assert_array_equal(test.targets[:, 0].numpy(), y[test_idx])
    assert set(train_idx).isdisjoint(test_idx)


def test_csv_loading_and_constant_feature(tmp_path: Path) -> None:
    feats = _write_ecoli(tmp_path / "ecoli.csv")
    t = read_table_csv(tmp_path / "ecoli.csv")
    assert t.features.shape == (48, 7) and t.classes[:3] == ("cp", "im", "imL")
    np.testing.assert_allclose(t.features, feats)
    assert t.labels[:9].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0]
    g = create_task_data("tabular", data_dir=tmp_path, datasets=["ecoli", "iris"])
    train, test = g.task("ecoli")
    assert g.input_shapes[0] == (7,) and g.tasks[0].num_classes == 8
    assert (len(train), len(test)) == (38, 10)  # 80/20 of 48, stratified over 8 classes
    assert np.bincount(test.targets[:, 0].long().numpy(), minlength=8).min() >= 1
    assert torch.equal(train.x[:, 3], torch.zeros(38)) and float(train.x.max()) == 1.0
    assert g.info["missing"] == [] and g.source.kind == "official"
    # the uci/ folder is searched too; numeric labels are ordered as numbers
    (tmp_path / "uci").mkdir()
    lines = ["a,b,label"] + [f"{i},{i % 3},{[2, 10, 9][i % 3]}" for i in range(12)]
    (tmp_path / "uci" / "toy.csv").write_text("\n".join(lines))
    toy = read_table_csv(tmp_path / "uci" / "toy.csv")
    assert toy.classes == ("2", "9", "10") and toy.labels[:3].tolist() == [0, 2, 1]


def test_malformed_csv_rejected(tmp_path: Path) -> None:
    path = tmp_path / "heart.csv"
    path.write_text("age,sex,label\n63,1,0\n67,?,2\n")
    with pytest.raises(MtlensError, match=r"heart.csv: line 3, column 'sex' holds '\?', expected a number"):
        read_table_csv(path)
    path.write_text("age,sex,label\n63,1,0\n67,1\n")
    with pytest.raises(MtlensError, match="line 3 has 2 columns, expected 3"):
        read_table_csv(path)
    path.write_text("age,sex,label\n63,1,\n")
    with pytest.raises(MtlensError, match="empty class label"):
        read_table_csv(path)
    path.write_text("age,sex,label\n")
    with pytest.raises(MtlensError, match="expected a header row and at least one sample"):
        read_table_csv(path)
    # a well-formed file whose width disagrees with seed 003 Fig. 5a
    path.write_text("age,sex,label\n" + "".join(f"{i},{i % 2},{i % 5}\n" for i in range(20)))
    with pytest.raises(MtlensError, match=r"2 features and 5 classes, expected 13 and 5 for heart \(seed 003 Fig. 5a\)"):
        build_tabular(tmp_path, datasets=["heart"])


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(MtlensError, match="unknown: mnist"):
        build_tabular(datasets=["iris", "mnist"])
    with pytest.raises(MtlensError, match="yeast.csv not found"):
        build_tabular(tmp_path, datasets=["iris", "yeast"], require_all=True)
    with pytest.raises(MtlensError, match="none of pima.csv found"):
        build_tabular(tmp_path, datasets=["pima"])
    with pytest.raises(MtlensError, match="does not exist"):
        build_tabular(tmp_path / "missing-dir")
    assert len(UCI_TABLE) == 10 and UCI_TABLE["yeast"] == (8, 10, 1484)
