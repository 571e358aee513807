"""The dense settings: seed 004 App. 7's values, and dense_quick's model and data built from them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mtlens.errors import MtlensError
from mtlens.models.dense_settings import DENSE_SETTINGS, build_dense_data, build_dense_model, dense_setting


@pytest.mark.parametrize("name", ["nyuv2", "cityscapes"])
def test_seed_004_values(name: str) -> None:
    s = dense_setting(name)
    assert (s.backbone, s.optimizer, s.lr, s.momentum, s.batch_size) == ("resnet18", "sgd", 1e-4, 0.9, 32)
    assert s.warmup_steps > 0 and s.data_options["resize"] == (512, 512) and s.measures_every == 10
    assert len(s.seeds) == 3 and s.benchmark == name


def test_dense_quick_builds_on_the_procedural_benchmark() -> None:
    s = replace(DENSE_SETTINGS["dense_quick"], data_options={"image_size": 16, "sizes": (8, 2, 2), "seed": 0})
    assert s.benchmark == "shapes3d_dense" and s.epochs(160) == 4 and s.epochs(640) == 1
    assert len(s.methods) == 16 and "ew" in s.methods
    data = build_dense_data(s)
    assert [len(data[k]) for k in ("train", "val", "test")] == [8, 2, 2]
    model = build_dense_model(s, data["train"].tasks, data["train"].output_size)
    losses, z = model.step_losses(data["train"].__getitems__([0, 1]))
    assert losses.shape == (3,) and z.shape == (2, 512, 2, 2)
    with pytest.raises(MtlensError, match="unknown dense setting 'nyu'"):
        dense_setting("nyu")
