"""Seed 003 §4.2: one multi-task set from ten UCI classification tables of different widths and class counts.

The ten datasets of seed 003 Fig. 5a (features, classes, samples): australian (14, 2, 690), breast_cancer
(30, 2, 569), ecoli (7, 8, 336), german (24, 2, 1000), heart (13, 5, 303), hepatitis (19, 2, 155), iris (4, 3,
150), pima (8, 2, 768), wine (13, 3, 178), yeast (8, 10, 1484).

iris, wine and breast_cancer come from scikit-learn's bundled copies. The other seven are read from
`<name>.csv` in the data directory (or its `uci/` folder): comma-separated, a header row, one row per sample,
numeric feature columns (no missing values: impute or drop them beforehand), the class label in the last
column (any text or number; classes are numbered in sorted order). A file's feature and class counts must
match Fig. 5a. Missing files leave their tasks out: the set lists them in `info["missing"]` and its source
says so; `require_all=True` makes a missing file an error.

Preprocessing (seed 003 Appendix A.2): a fixed random 80/20 train/test split per dataset (stratified by
class, seed `seed`, the same in every trial), then every feature min-max scaled to [0, 1] on the training part
(a constant feature becomes 0; test values use the training range and are not clipped).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtlens.data.base import Source
from mtlens.data.multitask import MultiTaskDataset
from mtlens.data.paths import find_file, resolve_data_dir, where
from mtlens.data.registry import TASK_DATA
from mtlens.data.task_groups import TaskGroupData
from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError

# seed 003 Fig. 5a: (input features, output classes, samples)
UCI_TABLE: dict[str, tuple[int, int, int]] = {
    "australian": (14, 2, 690),
    "breast_cancer": (30, 2, 569),
    "ecoli": (7, 8, 336),
    "german": (24, 2, 1000),
    "heart": (13, 5, 303),
    "hepatitis": (19, 2, 155),
    "iris": (4, 3, 150),
    "pima": (8, 2, 768),
    "wine": (13, 3, 178),
    "yeast": (8, 10, 1484),
}
BUNDLED = ("iris", "wine", "breast_cancer")
TEST_FRACTION = 0.2  # seed 003 Appendix A.2: "a random 80-20 split"


@dataclass(frozen=True)
class Table:
    """One classification table: features [N, d] float64, labels [N] int64 in 0..K-1, class names, origin."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    origin: str


def _bundled(name: str) -> Table:
    """Returns one of scikit-learn's bundled UCI copies."""
    from sklearn import datasets

    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}
    bunch = loader[name]()
    classes = tuple(str(c) for c in bunch.target_names)
    origin = f"sklearn.datasets.load_{name}"
    return Table(name, bunch.data.astype(np.float64), bunch.target.astype(np.int64), classes, origin)


def _class_order(values: list[str]) -> list[str]:
    """Returns the distinct labels sorted numerically when all are numbers, else as text."""
    distinct = sorted(set(values))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def read_table_csv(path: str | os.PathLike[str], name: str | None = None) -> Table:
    """Returns the table in a CSV file: header row, numeric feature columns, class label in the last column."""
    path = Path(path)
    name = name or path.stem
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise MtlensError(f"{path}: found {len(rows)} non-empty line(s), expected a header row and at least one sample")
    width = len(rows[0])
    if width < 2:
        raise MtlensError(f"{path}: header has {width} column(s), expected feature columns and a last label column")
    feats = np.empty((len(rows) - 1, width - 1), dtype=np.float64)
    labels: list[str] = []
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != width:
            raise MtlensError(f"{path}: line {line} has {len(row)} columns, expected {width} (as the header)")
        for k, cell in enumerate(row[:-1]):
            try:
                feats[i, k] = float(cell)
            except ValueError:
                raise MtlensError(
                    f"{path}: line {line}, column {rows[0][k]!r} holds {cell!r}, expected a number "
                    "(impute or drop missing values first)"
                ) from None
        if not np.isfinite(feats[i]).all():
            raise MtlensError(f"{path}: line {line} holds NaN or inf features; impute or drop them first")
        label = row[-1].strip()
        if not label:
            raise MtlensError(f"{path}: line {line} has an empty class label (last column)")
        labels.append(label)
    classes = _class_order(labels)
    index = {c: k for k, c in enumerate(classes)}
    return Table(name, feats, np.array([index[v] for v in labels], dtype=np.int64), tuple(classes), str(path))


def _check_against_seed(table: Table) -> None:
    width, classes, _ = UCI_TABLE[table.name]
    found_classes = len(table.classes)
    if table.features.shape[1] != width or found_classes != classes:
        raise MtlensError(
            f"{table.origin}: {table.features.shape[1]} features and {found_classes} classes, expected {width} "
            f"and {classes} for {table.name} (seed 003 Fig. 5a)"
        )


def split_and_scale(table: Table, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (x_train, y_train, x_test, y_test): a stratified 80/20 split, features min-max scaled on train."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    idx = np.arange(len(table.labels))
    try:
        train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=seed, stratify=table.labels)
    except ValueError as exc:
        raise MtlensError(f"{table.origin}: cannot make a stratified 80/20 split ({exc})") from None
    train, test = np.sort(train), np.sort(test)
    # MinMaxScaler maps a constant training feature to 0 (its zero range is treated as 1)
    scaler = MinMaxScaler().fit(table.features[train])
    return (
        scaler.transform(table.features[train]),
        table.labels[train],
        scaler.transform(table.features[test]),
        table.labels[test],
    )


def build_tabular(
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    datasets: list[str] | tuple[str, ...] | None = None,
    require_all: bool = False,
) -> TaskGroupData:
    """Returns the UCI multi-task set: per dataset a one-task train/test MultiTaskDataset of scaled features.

    datasets: which of the ten to use (default all, in Fig. 5a's order); seed: the fixed split's seed.
    """
    names = list(UCI_TABLE) if datasets is None else list(datasets)
    unknown = [n for n in names if n not in UCI_TABLE]
    if unknown or not names or len(set(names)) != len(names):
        raise MtlensError(
            f"tabular: datasets {names} must be distinct names among {', '.join(UCI_TABLE)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    root = resolve_data_dir(data_dir)
    tables, missing = [], []
    for name in names:
        if name in BUNDLED:
            tables.append(_bundled(name))
            continue
        path = find_file(root, [f"{name}.csv"], folders=("uci",))
        if path is None:
            missing.append(f"{name}.csv")
            continue
        table = read_table_csv(path, name)
        _check_against_seed(table)
        tables.append(table)
    if missing and require_all:
        raise MtlensError(f"tabular: {', '.join(missing)} not found {where(root)}; add them or set require_all=False")
    if not tables:
        raise MtlensError(
            f"tabular: none of {', '.join(missing)} found {where(root)}; add them or include a bundled dataset"
        )
    specs, train, test, shapes = [], [], [], []
    sizes = {}
    for table in tables:
        spec = TaskSpec(table.name, "multiclass", len(table.classes))
        xtr, ytr, xte, yte = split_and_scale(table, seed)

        def part(x: np.ndarray, y: np.ndarray) -> MultiTaskDataset:
            targets = torch.from_numpy(y[:, None].astype(np.float32))
            return MultiTaskDataset(torch.from_numpy(x.astype(np.float32)), targets, (spec,))

        specs.append(spec)
        train.append(part(xtr, ytr))
        test.append(part(xte, yte))
        shapes.append((table.features.shape[1],))
        sizes[table.name] = {"train": len(ytr), "test": len(yte), "origin": table.origin}
    used = ", ".join(t.name for t in tables)
    if missing:
        source = Source("stand-in", f"UCI tables {used}; missing {', '.join(missing)} {where(root)} (seed 003 uses ten)")
    else:
        source = Source("official", f"UCI tables {used} (scikit-learn copies and CSV files {where(root)})")
    info = {"found": [t.name for t in tables], "missing": missing, "split_seed": seed, "datasets": sizes}
    return TaskGroupData("tabular", tuple(specs), tuple(train), tuple(test), tuple(shapes), source, info)


TASK_DATA.add("tabular", build_tabular)
