"""`_gbt`, our numba GradientBoostingClassifier, against scikit-learn's own: bit for bit, on the inputs that
decide sample orders (ties between different samples, duplicates, constant and mostly-zero codes)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from mtlens.measures import disentanglement as D
from mtlens.measures.disentanglement._dci import gbt_engine_verified
from mtlens.measures.disentanglement._gbt import fit_gbt, np_sum
from mtlens.measures.disentanglement._gbt_sort import RAND_R_MAX, introsort3

pytestmark = pytest.mark.skipif(not gbt_engine_verified(), reason="_gbt reproduces the verified scikit-learn versions")


def _both(x, y, x_test, seed):
    rng = np.random.RandomState(seed)
    n_classes = np.unique(y).size
    ours = fit_gbt(x, y, x_test, rng.randint(0, RAND_R_MAX, size=100 * n_classes))
    ref_rng = np.random.RandomState(seed)
    model = GradientBoostingClassifier(random_state=ref_rng).fit(x, y)
    return ours, model, rng, ref_rng


def _cases():
    rs = np.random.RandomState(0)
    x = rs.randn(600, 5).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0.4) + rs.randint(0, 2, 600)
    dup = rs.randint(0, 600, 600)
    relu = x.copy()
    relu[:, 3] = 0.0
    relu[:, 4] = np.maximum(relu[:, 4], 0.0)
    ints = rs.randint(0, 5, (400, 4)).astype(np.float32)
    return {
        "continuous": (x, y),
        "duplicates": (x[dup], y[dup]),
        "ties between different samples": (np.round(x, 1), y),
        "constant and half-zero codes": (relu, y),
        "integer codes": (ints, (ints.sum(1).astype(int) + rs.randint(0, 2, 400)) % 4),
        "float64 codes, negative labels": (rs.randn(300, 3), np.digitize(rs.randn(300), [-1, 0, 1]) - 2),
        "string labels, tiny": (rs.randn(12, 3).astype(np.float32), np.array(list("abcabcabcabc"))),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_fit_gbt_equals_sklearn_bit_for_bit(case):
    x, y = _cases()[case]
    x_test = np.asarray(x[: min(50, len(x))]) + 0.01
    ours, model, rng, ref_rng = _both(x, y, x_test, seed=3)
    importances, train_pred, test_pred = ours
    assert np.array_equal(importances, model.feature_importances_)
    assert np.array_equal(train_pred, model.predict(x))
    assert np.array_equal(test_pred, model.predict(x_test))
    assert rng.randint(0, 2**30) == ref_rng.randint(0, 2**30)  # the same number of seeds drawn


def test_fit_gbt_rejects_two_classes():
    with pytest.raises(ValueError, match="3\\+ classes"):
        fit_gbt(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), np.zeros((1, 2), np.float32), np.zeros(200))


def test_np_sum_is_numpys_pairwise_sum():
    rs = np.random.RandomState(1)
    for n in [*range(0, 40), 127, 128, 129, 255, 256, 257, 1001, 10007]:
        a = rs.randn(n) * 10.0 ** rs.randint(-3, 3, n)
        assert np_sum(a, n) == np.sum(a), n


def test_introsort3_leaves_ties_where_sklearns_sort_does():
    sorting = pytest.importorskip("sklearn.utils._sorting")
    rs = np.random.RandomState(2)
    for n in (5, 16, 17, 100, 1000, 5000):
        values = rs.randint(0, max(2, n // 20), n).astype(np.float32)  # many ties
        index = rs.permutation(n).astype(np.intp)
        v_ref, i_ref = values.copy(), index.copy()
        sorting._py_simultaneous_sort(v_ref, i_ref, n, use_three_way_partition=True)
        v, i = values.copy(), index.astype(np.int64)
        introsort3(v, i, 0, n)
        assert np.array_equal(v, v_ref) and np.array_equal(i, i_ref), n


def test_dci_engines_agree_and_leave_the_rng_alike():
    rs = np.random.RandomState(4)
    y = np.stack([rs.randint(0, 4, 500), rs.randint(0, 2, 500), rs.randint(0, 6, 500)], axis=1)
    codes = (np.round(rs.randn(500, 4) + y[:, [0, 1, 2, 0]], 2)).astype(np.float32)
    yt = np.stack([rs.randint(0, 4, 200), rs.randint(0, 2, 200), rs.randint(0, 6, 200)], axis=1)
    codes_t = rs.randn(200, 4).astype(np.float32)
    a_rng, b_rng = np.random.RandomState(9), np.random.RandomState(9)
    a = D.dci(codes, y, codes_t, yt, random_state=a_rng, engine="auto")
    b = D.dci(codes, y, codes_t, yt, random_state=b_rng, engine="sklearn")
    assert a.as_dict() == b.as_dict()
    assert np.array_equal(a.importance_matrix, b.importance_matrix)
    assert a_rng.randint(0, 2**30) == b_rng.randint(0, 2**30)


def test_dci_unknown_engine_is_one_line():
    with pytest.raises(ValueError, match="unknown DCI engine 'gpu'; use one of auto, sklearn"):
        D.dci(np.zeros((4, 2)), np.zeros((4, 2), int), np.zeros((4, 2)), np.zeros((4, 2), int), engine="gpu")
