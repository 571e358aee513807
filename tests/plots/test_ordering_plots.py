"""Seed 003 figures from plain numbers and from a trained soft-ordering model."""

from pathlib import Path

import numpy as np
import pytest

from mtlens import MtlensError
from mtlens.data.tasks import TaskSpec
from mtlens.models.ordering import LayerOrderingModel
from mtlens.plots.ordering import (as_scales, plot_error_curves, plot_fitting, plot_layer_paths, plot_layer_usage,
                                   plot_relative_error, plot_scale_trace)


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_layer_usage_figures_from_a_soft_model(tmp_path: Path) -> None:
    tasks = [TaskSpec(f"t{i}", "binary") for i in range(3)]
    model = LayerOrderingModel(tasks, (5,), ordering="soft", depth=4, width=8, identity_layer=True)
    s = as_scales(model)
    assert s.shape == (3, 5, 4) and np.allclose(s.sum(1), 1.0)
    assert _is_png(plot_layer_paths(model, tmp_path / "paths.png", [t.name for t in tasks]))
    assert _is_png(plot_layer_usage(model, tmp_path / "usage.png"))
    with pytest.raises(MtlensError, match="sum to 1"):
        as_scales(np.ones((2, 3, 4)))
    with pytest.raises(MtlensError, match="\\[tasks, layers, depths\\]"):
        as_scales(np.ones((3, 4)))


def test_experiment_figures(tmp_path: Path) -> None:
    assert _is_png(plot_fitting({"parallel": {64: [0.9, 0.8], 128: [0.7]}, "permuted": {64: [1.0], 128: [0.9]}},
                                tmp_path / "fit.png"))
    assert _is_png(plot_relative_error({"soft": {2: [0.9, 0.8], 4: [0.7]}}, tmp_path / "rel.png"))
    assert _is_png(plot_error_curves({"soft": ([10, 20], [[0.3, 0.2], [0.35, 0.25]])}, tmp_path / "curves.png"))
    trace = {"step": [0, 5], "distance": [[0.0, 0.0], [0.1, 0.2]], "hardness": [[0.5, 0.5], [0.6, 0.7]]}
    assert _is_png(plot_scale_trace(trace, tmp_path / "trace.png"))
