"""scikit-learn's GradientBoostingClassifier() for 3+ classes, the same numbers many times faster (numba).

disentanglement_lib's DCI fits one default `GradientBoostingClassifier()` per factor (100 stages of one
depth-3 regression tree per class, learning rate 0.1, multinomial deviance). `fit_gbt` reproduces its
`feature_importances_` and predictions bit for bit, as scikit-learn 1.x computes them (checked against 1.9.1
in tests/measures/test_gbt.py): the prior init, the softmax gradient, the trees (`_gbt_tree`), the Newton
leaf values with numpy's own summation order, the importances' averaging. The trees draw their xorshift seeds
from the caller, who draws them from the RandomState sklearn would have used (one `randint(0, 2**31 - 1)` per
tree, stage by stage, class by class).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats
from numba import njit, prange

from mtlens.measures.disentanglement._gbt_tree import LEAF, MAX_NODES, harmful_tie, build_tree

STAGES = 100  # GradientBoostingClassifier() defaults
LEARNING_RATE = 0.1
MAX_DEPTH = 3
_BLOCK = 128  # numpy's pairwise-summation block (PW_BLOCKSIZE)


@njit(cache=True, nogil=True)
def _block(a, lo, n):
    """Returns numpy's sum of a[lo:lo+n] for n <= 128: 8 partial sums, then the rest in order."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def np_sum(a, n):
    """Returns np.sum(a[:n]) bit for bit (a float64, contiguous): numpy's pairwise summation.

    numpy halves a run longer than 128 (the first half rounded down to a multiple of 8) and adds the halves'
    sums; written with an explicit stack because numba cannot cache recursive functions reliably.
    """
    if n <= _BLOCK:
        return _block(a, 0, n)
    los = np.empty(64, dtype=np.int64)
    ns = np.empty(64, dtype=np.int64)
    phase = np.zeros(64, dtype=np.int64)
    left = np.empty(64)
    top = 0
    los[0], ns[0], phase[0] = 0, n, 0
    ret = 0.0
    while top >= 0:
        lo, m = los[top], ns[top]
        if m <= _BLOCK:
            ret = _block(a, lo, m)
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if phase[top] == 0:
            phase[top] = 1
            top += 1
            los[top], ns[top], phase[top] = lo, half, 0
        elif phase[top] == 1:
            left[top] = ret
            phase[top] = 2
            top += 1
            los[top], ns[top], phase[top] = lo + half, m - half, 0
        else:
            ret = left[top] + ret
            top -= 1
    return ret


@njit(cache=True, nogil=True)
def _apply(X, node_feature, node_threshold, node_left, node_right, out):
    for i in range(X.shape[0]):
        node = 0
        while node_left[node] != LEAF:
            if np.float64(X[i, node_feature[node]]) <= node_threshold[node]:
                node = node_left[node]
            else:
                node = node_right[node]
        out[i] = node


@njit(cache=True, nogil=True)
def _class_tree(X, labels, k, y, seed, dup, tie_prone, sorted_root, X_test, raw, raw_test, importances, t,
                node_counts):
    """Fits the tree of class k on its negative gradient y, sets its Newton leaf values, adds it to raw."""
    n, n_features = X.shape
    K = raw.shape[1]
    feat = np.empty(MAX_NODES, dtype=np.int64)
    thr = np.empty(MAX_NODES)
    left = np.empty(MAX_NODES, dtype=np.int64)
    right = np.empty(MAX_NODES, dtype=np.int64)
    imp = np.empty(MAX_NODES)
    wts = np.empty(MAX_NODES)
    val = np.empty(MAX_NODES)
    count = build_tree(X, y, dup, tie_prone, sorted_root, seed, MAX_DEPTH, np.empty(n, dtype=np.int64),
                       np.empty((n_features, n), dtype=np.int64), np.empty(n, dtype=np.float32),
                       np.zeros(n, dtype=np.bool_), np.empty(n, dtype=np.int64), feat, thr, left, right, imp, wts,
                       val)
    node_counts[t] = count
    if count < 0:
        return
    leaf_of = np.empty(n, dtype=np.int64)
    _apply(X, feat, thr, left, right, leaf_of)
    gathered = np.empty(n)
    hessian = np.empty(n)
    factor = (K - 1) / K
    for leaf in range(count):  # one Newton step per leaf, as sklearn's _update_terminal_regions
        if left[leaf] != LEAF:
            continue
        c = 0
        for i in range(n):  # samples in index order, as np.nonzero gives them
            if leaf_of[i] == leaf:
                gathered[c] = y[i]
                prob = (1.0 if labels[i] == k else 0.0) - y[i]
                hessian[c] = prob * (1.0 - prob)
                c += 1
        numerator = np_sum(gathered, c) / np.float64(c)
        numerator *= factor
        denominator = np_sum(hessian, c) / np.float64(c)
        val[leaf] = 0.0 if abs(denominator) < 1e-150 else numerator / denominator
    for i in range(n):
        raw[i, k] += LEARNING_RATE * val[leaf_of[i]]
    leaf_of_test = np.empty(X_test.shape[0], dtype=np.int64)
    _apply(X_test, feat, thr, left, right, leaf_of_test)
    for i in range(X_test.shape[0]):
        raw_test[i, k] += LEARNING_RATE * val[leaf_of_test[i]]
    importances[t, :] = 0.0
    for node in range(count):
        if left[node] != LEAF:
            importances[t, feat[node]] += (wts[node] * imp[node] - wts[left[node]] * imp[left[node]]
                                           - wts[right[node]] * imp[right[node]])
    for f in range(n_features):
        importances[t, f] /= wts[0]


@njit(cache=True, nogil=True, parallel=True)
def _boost(X, labels, n_classes, init_row, seeds, dup, tie_prone, sorted_root, X_test, importances, node_counts):
    """Fits the booster; fills importances [T, F] (unnormalised, per tree) and node_counts [T] (-1: a split
    the fast path cannot follow). Returns (train raw predictions [n, K], test raw predictions [m, K]).

    The K trees of a stage depend only on the stage's gradient, so they are fitted in parallel (each adds to
    its own column of the raw predictions); the numbers do not depend on the number of threads.
    """
    n = X.shape[0]
    K = n_classes
    raw = np.empty((n, K))
    raw_test = np.empty((X_test.shape[0], K))
    for i in range(n):
        raw[i, :] = init_row
    for i in range(X_test.shape[0]):
        raw_test[i, :] = init_row
    neg_g = np.empty((K, n))
    for stage in range(seeds.shape[0] // K):
        for i in prange(n):  # sklearn's HalfMultinomialLoss.gradient, negated
            p = np.empty(K)
            top = raw[i, 0]
            for k in range(1, K):
                if top < raw[i, k]:
                    top = raw[i, k]
            total = 0.0
            for k in range(K):
                p[k] = math.exp(raw[i, k] - top)
                total += p[k]
            for k in range(K):
                p[k] /= total
                neg_g[k, i] = -(p[k] - (1.0 if labels[i] == k else 0.0))
        for k in prange(K):
            t = stage * K + k
            _class_tree(X, labels, k, neg_g[k], seeds[t], dup, tie_prone, sorted_root, X_test, raw, raw_test,
                        importances, t, node_counts)
        for t in range(stage * K, stage * K + K):
            if node_counts[t] < 0:
                node_counts[0] = -1
                return raw, raw_test
    return raw, raw_test


def _init_row(encoded: np.ndarray, n_classes: int) -> np.ndarray:
    """Returns sklearn's initial raw prediction: the symmetric multinomial logit of the clipped class prior."""
    prior = np.bincount(encoded, weights=np.ones(encoded.shape[0]), minlength=n_classes)
    prior = (np.ones((1, 1)) * (prior / prior.sum()))
    eps = np.finfo(np.float64).eps
    prior = np.clip(prior, eps, 1 - eps, dtype=np.float64)
    return np.log(prior / scipy.stats.gmean(prior, axis=1)[:, None])[0]


def _duplicates(X: np.ndarray, encoded: np.ndarray) -> np.ndarray:
    """Returns a group id per sample: samples with the same code row and the same label share one."""
    rows = np.ascontiguousarray(np.column_stack([X.view(np.int32), encoded.astype(np.int32)]))
    _, inverse = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel(),
                           return_inverse=True)
    return inverse.astype(np.int64).ravel()


def _tie_prone(X: np.ndarray, sorted_root: np.ndarray, dup: np.ndarray) -> np.ndarray:
    """Returns, per feature, whether two different samples share a value anywhere (only then can a node's)."""
    n = X.shape[0]
    return np.array([harmful_tie(sorted_root[f], 0, n, X, f, dup) for f in range(X.shape[1])], dtype=np.bool_)


def fit_gbt(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seeds: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Returns (feature_importances_, train predictions, test predictions) of GradientBoostingClassifier().

    `y_train` must hold 3 or more classes; `seeds` one xorshift seed per tree (STAGES x classes). Returns None
    where a split cannot be followed exactly (the caller then runs scikit-learn itself).
    """
    X = np.ascontiguousarray(x_train, dtype=np.float32)
    X_test = np.ascontiguousarray(x_test, dtype=np.float32)
    classes, encoded = np.unique(y_train, return_inverse=True)
    encoded = encoded.astype(np.int64).ravel()
    n_classes = classes.size
    if n_classes < 3 or seeds.shape[0] != STAGES * n_classes:
        raise ValueError(f"fit_gbt needs 3+ classes and {STAGES} seeds per class, got {n_classes} classes")
    sorted_root = np.ascontiguousarray(np.argsort(X, axis=0, kind="stable").T.astype(np.int64))
    dup = _duplicates(X, encoded)
    tie_prone = _tie_prone(X, sorted_root, dup)
    importances = np.empty((seeds.shape[0], X.shape[1]))
    node_counts = np.zeros(seeds.shape[0], dtype=np.int64)
    raw, raw_test = _boost(X, encoded, n_classes, _init_row(encoded, n_classes), seeds.astype(np.int64), dup,
                           tie_prone, sorted_root, X_test, importances, node_counts)
    if node_counts[0] < 0:
        return None
    relevant = importances[node_counts > 1]
    if relevant.shape[0] == 0:
        feature_importances = np.zeros(X.shape[1])
    else:
        avg = np.mean(relevant, axis=0, dtype=np.float64)
        feature_importances = avg / np.sum(avg)
    return feature_importances, classes[np.argmax(raw, axis=1)], classes[np.argmax(raw_test, axis=1)]
