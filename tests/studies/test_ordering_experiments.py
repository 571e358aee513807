"""Seed 003 experiment cells: random-task fitting (the §3.2 claim), digit pairs, tabular, Omniglot."""

import importlib.util
import statistics
from pathlib import Path

import pytest

from mtlens import MtlensError
from mtlens.data.omniglot import OmniglotNotFound
from mtlens.studies.ordering_experiments import (DIGIT_PAIRS, OMNIGLOT, TABULAR, digit_pairs_cell, omniglot_cell,
                                                 relative_error, setting_for, tabular_cell)
from mtlens.studies.ordering_fitting import random_fit_cell

_spec = importlib.util.spec_from_file_location("omniglot_tree", Path(__file__).parents[1] / "data" / "test_omniglot.py")
omniglot_tree = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(omniglot_tree)

TINY = {"iterations": 20, "eval_every": 10, "batch_size": 8, "trace_every": 5}


def test_parallel_fits_n_about_as_well_as_permuted_fits_2n() -> None:
    """Seed 003 §3.2 / Fig. 2: permuted ordering fits 2n samples per task as well as parallel fits n.

    Linear core, m = 64, n = 64, full-batch Adam (200 steps, lr 0.06). Over 8 seeds we measured: parallel(n)
    0.819 +- 0.045, permuted(2n) 0.851 +- 0.027, parallel(2n) 0.717 +- 0.021; per seed, parallel(n) - permuted(2n)
    = -0.031 +- 0.063 and permuted(2n) - parallel(2n) = 0.134 +- 0.019. With 3 seeds the standard errors are
    0.037 and 0.011, so the tolerance 0.1 on |parallel(n) - permuted(2n)| sits 1.8 standard errors beyond the
    measured difference (2.7 from zero), and the required gap of 0.1 sits 3 standard errors below the measured
    one. A permuted ordering no better than parallel (permuted(2n) near 0.72) would fail the gap check.
    """
    def mean_acc(n: int, variant: str) -> float:
        return statistics.mean(random_fit_cell(n, variant, "linear", seed, width=64, steps=200, lr=0.06).train_acc
                               for seed in range(3))

    parallel_n, permuted_2n, parallel_2n = mean_acc(64, "parallel"), mean_acc(128, "permuted"), mean_acc(128, "parallel")
    assert abs(parallel_n - permuted_2n) <= 0.1
    assert permuted_2n - parallel_2n >= 0.1


def test_single_task_2n_is_the_parallel_reference() -> None:
    r = random_fit_cell(16, "single_task", "relu", seed=0, steps=50)
    assert r.n == 16 and list(r.task_acc) == ["random0"] and 0.5 <= r.train_acc <= 1.0
    with pytest.raises(MtlensError, match="unknown variant 'soft'"):
        random_fit_cell(16, "soft")
    with pytest.raises(MtlensError, match="unknown random-task core 'tanh'"):
        random_fit_cell(16, "parallel", "tanh")


def test_digit_pairs_cell() -> None:
    soft = digit_pairs_cell(2, "soft", 0, setting_for(DIGIT_PAIRS, "quick", **TINY), device="cpu")
    assert soft.iterations == [10, 20] and len(soft.mean_error) == 2 and soft.n_tasks == 2
    assert soft.source.startswith("stand-in") or soft.source.startswith("official")
    assert len(soft.scales) == 2 and len(soft.scales[0]) == 4 and len(soft.scales[0][0]) == 4
    assert soft.scale_trace["step"] == [0, 5, 10, 15, 20]
    assert all(len(d) == 4 for d in soft.scale_trace["distance"])
    assert soft.scale_trace["distance"][0] == [0.0] * 4  # equal initial scales
    permuted = digit_pairs_cell(2, "permuted", 0, setting_for(DIGIT_PAIRS, "quick", **TINY), device="cpu")
    assert permuted.tasks == soft.tasks and sorted(permuted.permutations[0]) == [0, 1, 2, 3]
    assert permuted.scales is None and set(permuted.values()) == {"test/mean_error", "test/mean_loss", *(f"test/{t}/{m}" for t in soft.tasks for m in ("error", "loss"))}
    again = digit_pairs_cell(2, "soft", 0, setting_for(DIGIT_PAIRS, "quick", **TINY), device="cpu")
    assert again.mean_error == soft.mean_error and again.scales == soft.scales  # a seed reproduces its cell


def test_tabular_cell_names_missing_tables() -> None:
    r = tabular_cell("single_task", 0, setting_for(TABULAR, "quick", **TINY), device="cpu")
    assert list(r.task_error) == ["iris", "wine", "breast_cancer"] or set(r.task_error) >= {"iris", "wine", "breast_cancer"}
    assert len(r.info["missing"]) == 10 - len(r.task_error)
    assert all(0.0 <= e <= 1.0 for e in r.task_error.values())
    with pytest.raises(MtlensError, match="level='param'"):
        tabular_cell("soft", 0, setting_for(TABULAR, "quick", **TINY), method="pcgrad",
                     method_options={"level": "feature"}, device="cpu")


def test_omniglot_cell(tmp_path: Path) -> None:
    with pytest.raises(OmniglotNotFound):
        omniglot_cell(3, "soft", 0, data_dir=tmp_path)
    tree = omniglot_tree.write_tree(tmp_path / "omni")
    setting = setting_for(OMNIGLOT, "quick", iterations=4, eval_every=2, width=6, depth=3, trace_every=2)
    r = omniglot_cell(3, "soft", 0, setting, data_dir=tree, device="cpu")
    assert r.tasks == ["Gujarati", "Sylheti", "Arcadian"] and r.iterations == [2, 4]
    assert len(r.scales[0]) == 3 and r.source.startswith("official")


def test_relative_error() -> None:
    assert relative_error(0.1, 0.2) == 0.5
    with pytest.raises(MtlensError, match="positive parallel-ordering error"):
        relative_error(0.1, 0.0)
    with pytest.raises(MtlensError, match="unknown setting 'fast'"):
        setting_for(DIGIT_PAIRS, "fast")
