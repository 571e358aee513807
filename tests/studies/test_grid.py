"""Grid parsing and expansion: values split at top-level commas, every point validated, labels say the point."""

from __future__ import annotations

import pytest

from mtlens import MtlensError
from mtlens.studies.grid import expand, parse_grid
from mtlens.studies.registry import read_source


def test_grid_values_split_at_top_level_commas_only() -> None:
    assert parse_grid(["train.lr=1e-3,1e-4", "variants=[multi_head, random],[one_head]"]) == [
        ("train.lr", ["1e-3", "1e-4"]), ("variants", ["[multi_head, random]", "[one_head]"])]
    with pytest.raises(MtlensError, match="given twice"):
        parse_grid(["train.lr=1", "train.lr=2"])
    with pytest.raises(MtlensError, match="needs at least one"):
        parse_grid([])
    with pytest.raises(MtlensError, match=r"override train.lr='\[1,2': .*close its brackets"):
        parse_grid(["train.lr=[1,2"])


def test_every_grid_point_is_a_validated_config_with_its_own_report_folder() -> None:
    data, origin = read_source("hard_sharing/quick")
    configs, labels = expand(data, parse_grid(["train.lr=1e-3,1e-4", "method.name=ew,mgda"]), origin)
    assert labels == ["train.lr=1e-3 method.name=ew", "train.lr=1e-3 method.name=mgda",
                      "train.lr=1e-4 method.name=ew", "train.lr=1e-4 method.name=mgda"]
    assert [(c.train.lr, c.method.name) for c in configs] == [(1e-3, "ew"), (1e-3, "mgda"), (1e-4, "ew"), (1e-4, "mgda")]
    assert [c.report_dir for c in configs] == [f"runs/reports/hard_sharing_quick_sweep/point_{i:03d}" for i in range(4)]
