"""Task dissimilarity (seed 001 eq. 11), Table V's clustering success, and the Wilson success-rate interval."""

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from mtlens import MtlensError
from mtlens.measures.task_similarity import (
    clustering_success,
    pairs_from_clusters,
    success_rate,
    task_dissimilarity,
)

LOG_VAR = np.array([[0.0, 0.0, 3.0, 3.0], [0.0, 1.0, 3.0, 3.0], [3.0, 3.0, 0.0, 0.0], [2.0, 3.0, 0.0, -1.0]])


def test_l1_dissimilarity_is_eq11_by_hand() -> None:
    d = task_dissimilarity(LOG_VAR).matrix
    assert d.shape == (4, 4) and np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert d[0, 1] == 1.0 and d[0, 2] == 12.0 and d[2, 3] == 2.0 and d[1, 3] == 2 + 2 + 3 + 4
    # eq. 11's second form: sum |2 log(sigma_1 / sigma_2)|
    sigma = np.exp(0.5 * LOG_VAR)
    assert np.isclose(d[0, 3], np.abs(2 * np.log(sigma[0] / sigma[3])).sum())
    # a torch tensor in, the same numbers out
    assert np.array_equal(task_dissimilarity(torch.tensor(LOG_VAR)).matrix, d)


def test_cosine_dissimilarity_ignores_scale_and_sign() -> None:
    s = np.array([[1.0, 0.0], [-3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    d = task_dissimilarity(s, "cos").matrix
    assert np.allclose(d[0, 1], 0.0) and np.allclose(d[0, 2], 1.0) and np.allclose(d[0, 3], 1 - 2**-0.5)
    assert np.all(np.diag(d) == 0)


def test_clustering_success_and_margin_on_a_hand_made_matrix() -> None:
    r = clustering_success(task_dissimilarity(LOG_VAR).matrix, [(0, 1), (2, 3)])
    assert r.success and r.max_in == 2.0 and r.min_out == 11.0 and r.margin == 9.0
    assert r.mean_in == 1.5 and r.mean_out == np.mean([12.0, 12.0, 11.0, 11.0])
    assert r.as_dict("cos")["cos/success"] == 1.0
    bad = clustering_success(task_dissimilarity(LOG_VAR).matrix, [(0, 2), (1, 3)])
    assert not bad.success and bad.margin == 1.0 - 12.0


def test_a_tie_between_in_and_out_distances_is_a_failure_with_zero_margin() -> None:
    d = np.array([[0, 1, 2, 2], [1, 0, 2, 2], [2, 2, 0, 2], [2, 2, 2, 0]], dtype=float)
    r = clustering_success(d, [(0, 1), (2, 3)])
    assert not r.success and r.margin == 0.0 and r.max_in == r.min_out == 2.0
    identical = clustering_success(np.zeros((3, 3)), [(0, 1)])
    assert not identical.success and identical.margin == 0.0


def test_pairs_by_name_and_from_clusters() -> None:
    names = ["a", "b", "c", "d", "e", "f"]
    pairs = pairs_from_clusters([["a", "b", "c"], ["d", "e", "f"]])
    assert pairs == [("a", "b"), ("a", "c"), ("b", "c"), ("d", "e"), ("d", "f"), ("e", "f")]
    d = np.full((6, 6), 5.0)
    np.fill_diagonal(d, 0)
    d[:3, :3] = d[3:, 3:] = 1.0
    np.fill_diagonal(d, 0)
    r = clustering_success(d, pairs, names=names)
    assert r.success and r.margin == 4.0


@pytest.mark.parametrize(
    "pairs, names, match",
    [([(0, 9)], None, r"pair \(0, 9\) names unknown task 9; task indices are 0..3"),
     ([("a", "z")], ["a", "b", "c", "d"], "names unknown task 'z'; the tasks are a, b, c, d"),
     ([("a", "b")], None, "names unknown task 'a'"),
     ([(1, 1)], None, "with itself"),
     ([(0, 1, 2)], None, "two tasks"),
     ([], None, "needs both"),
     ([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)], None, "needs both")],
)
def test_bad_pairs_are_one_line_errors(pairs, names, match) -> None:
    with pytest.raises(MtlensError, match=match) as info:
        clustering_success(np.ones((4, 4)) - np.eye(4), pairs, names=names)
    assert "\n" not in str(info.value)


def test_bad_matrices_are_one_line_errors() -> None:
    with pytest.raises(MtlensError, match="symmetric"):
        clustering_success(np.array([[0, 1.0], [2.0, 0]]), [(0, 1)])
    with pytest.raises(MtlensError, match=r"holds nan at \[0, 1\]"):
        task_dissimilarity(np.array([[0, np.nan], [1.0, 2.0]]))
    with pytest.raises(MtlensError, match="T >= 2"):
        task_dissimilarity(np.ones((1, 4)))
    with pytest.raises(MtlensError, match="row 1 is all zeros"):
        task_dissimilarity(np.array([[1.0, 2.0], [0.0, 0.0]]), "cos")
    with pytest.raises(MtlensError, match="unknown dissimilarity metric 'l2'"):
        task_dissimilarity(LOG_VAR, "l2")


@pytest.mark.parametrize("k, n", [(0, 20), (7, 20), (20, 20), (48, 50), (1, 3)])
def test_success_rate_wilson_interval_matches_scipy(k: int, n: int) -> None:
    r = success_rate([True] * k + [False] * (n - k))
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert r.successes == k and r.trials == n and r.rate == k / n and r.interval == "wilson"
    assert np.isclose(r.low, ci.low, atol=1e-12) and np.isclose(r.high, ci.high, atol=1e-12)
    assert 0.0 <= r.low <= r.rate <= r.high <= 1.0


def test_success_rate_bad_input() -> None:
    with pytest.raises(MtlensError, match="at least one trial"):
        success_rate([])
    with pytest.raises(MtlensError, match="True / False per trial, got 0.5"):
        success_rate([True, 0.5])
    with pytest.raises(MtlensError, match="confidence must be in"):
        success_rate([True], confidence=1.0)
