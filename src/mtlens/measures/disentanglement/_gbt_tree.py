"""One regression tree of scikit-learn's GradientBoostingClassifier, built to give sklearn's numbers bit for bit.

sklearn (1.x, checked against 1.9.1) grows each depth-3 `DecisionTreeRegressor(criterion="squared_error")`
depth first; at every node it draws features in a Fisher-Yates order from its xorshift state, sorts the node's
samples by each feature, scans the split positions with running sums and keeps the first best one, then
partitions the samples in place. Every floating-point sum it makes runs in the order its samples happen to
lie in, so the same numbers need the same orders.

The speed-up: a node's samples sorted by a feature are the parent's sorted list filtered by side, so each
feature is sorted once per forest (`sorted_root`) and the lists are passed down instead of re-sorting at every
node of every tree. Where no two different samples share a feature value in the node, the list is the order
sklearn's sort produces, and it is copied. Samples that are exact duplicates (same code, same label) are
interchangeable in every later computation, so ties among them do not matter. A feature where two different
samples tie in the node is sorted as sklearn sorts it (`_gbt_sort.introsort3`, from the running sample order,
which is why that order is kept exactly too). Float32 codes of 10,000 samples do tie a few times per
dimension, so near the root most features still need the real sort; deeper nodes mostly do not.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mtlens.measures.disentanglement._gbt_sort import introsort3, rand_int

FEATURE_THRESHOLD = np.float32(1e-7)  # sklearn/tree/_partitioner.pxd (a float32 constant)
EPSILON = np.finfo(np.float64).eps  # sklearn/tree/_tree.pyx
LEAF = -1
MAX_NODES = 15  # depth 3


@njit(cache=True, nogil=True)
def _scan_feature(order, lo, m, X, f, y, sum_total, wn, best):
    """Scans the split positions of one feature in sample order `order[lo:lo+m]` (sorted by X[:, f]).

    `best` = [proxy, pos (local), feature, threshold]; updated in place where a position beats it.
    """
    sum_left = 0.0
    wl = 0.0
    pos = 0
    p = 0
    while p < m:
        p += 1
        while p < m and X[order[lo + p], f] <= X[order[lo + p - 1], f] + FEATURE_THRESHOLD:
            p += 1
        if p >= m:
            break
        if (p - pos) <= (m - p):
            for q in range(pos, p):
                sum_left += 1.0 * y[order[lo + q]]
                wl += 1.0
        else:  # sklearn's reverse_reset: running sums from the node's end
            sum_left = sum_total
            wl = wn
            for q in range(m - 1, p - 1, -1):
                sum_left -= 1.0 * y[order[lo + q]]
                wl -= 1.0
        wr = wn - wl
        sum_right = sum_total - sum_left
        pos = p
        proxy = sum_left * sum_left / wl + sum_right * sum_right / wr
        if proxy > best[0]:
            best[0] = proxy
            best[1] = p
            best[2] = f
            best[3] = np.float64(X[order[lo + p - 1], f]) / 2.0 + np.float64(X[order[lo + p], f]) / 2.0


@njit(cache=True, nogil=True)
def harmful_tie(order, lo, m, X, f, dup):
    """Returns True where two different (non-duplicate) samples share a value of feature f."""
    for q in range(1, m):
        a, b = order[lo + q - 1], order[lo + q]
        if X[a, f] == X[b, f] and dup[a] != dup[b]:
            return True
    return False


@njit(cache=True, nogil=True)
def _search(X, y, tied, start, end, n_known, features, constant_features, state, samples, lists, values,
            sum_total, wn, best):
    """Runs sklearn's best-split search on samples[start:end]; returns n_total_constants.

    Leaves samples[start:end] in the order sklearn's last sort leaves them: a feature without ties among
    different samples in this node (tied[f] False) has one sorted order, its list, copied; a tied one is
    sorted from the running order by sklearn's introsort.
    """
    m = end - start
    n_features = features.shape[0]
    f_i = n_features
    n_visited = 0
    n_found = 0
    n_drawn = 0
    n_total = n_known
    best[0] = -np.inf
    best[1] = m
    best[2] = 0
    best[3] = 0.0
    while f_i > n_total and (n_visited < n_features or n_visited <= n_found + n_drawn):
        n_visited += 1
        f_j = rand_int(n_drawn, f_i - n_found, state)
        if f_j < n_known:
            features[n_drawn], features[f_j] = features[f_j], features[n_drawn]
            n_drawn += 1
            continue
        f_j += n_found
        f = features[f_j]
        if tied[f]:
            for q in range(start, end):
                values[q] = X[samples[q], f]
            introsort3(values, samples, start, m)
        else:
            samples[start:end] = lists[f, start:end]
        if X[samples[end - 1], f] <= X[samples[start], f] + FEATURE_THRESHOLD:
            features[f_j], features[n_total] = features[n_total], features[f_j]
            n_found += 1
            n_total += 1
            continue
        f_i -= 1
        features[f_i], features[f_j] = features[f_j], features[f_i]
        _scan_feature(samples, start, m, X, f, y, sum_total, wn, best)
    features[:n_known] = constant_features[:n_known]
    constant_features[n_known:n_known + n_found] = features[n_known:n_known + n_found]
    return n_total


@njit(cache=True, nogil=True)
def build_tree(X, y, dup, tie_prone, sorted_root, seed, max_depth, samples, lists, values, goes_left, spare,
               node_feature, node_threshold, node_left, node_right, node_impurity, node_weight, node_value):
    """Grows one tree on targets y; fills the node arrays and returns the node count (-1: inconsistent split).

    Node ids follow sklearn's depth-first order; leaves have node_left == LEAF. `node_value` holds the mean
    target (the booster overwrites leaves). Work arrays: samples [n], lists [F, n], values [n] float32,
    goes_left [n] bool, spare [n].
    """
    n, n_features = X.shape
    state = np.empty(1, dtype=np.int64)
    state[0] = seed
    features = np.arange(n_features)
    constant_features = np.empty(n_features, dtype=np.int64)
    tied = np.zeros(n_features, dtype=np.bool_)
    best = np.empty(4)
    for i in range(n):
        samples[i] = i
    lists[:, :] = sorted_root
    # stack rows: start, end, depth, parent, is_left, n_constant; impurity kept beside
    stack = np.empty((2 * max_depth + 2, 6), dtype=np.int64)
    stack_impurity = np.empty(2 * max_depth + 2)
    top = 0
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3], stack[0, 4], stack[0, 5] = 0, n, 0, -1, 0, 0
    stack_impurity[0] = np.inf
    count = 0
    first = True
    while top >= 0:
        start, end, depth = stack[top, 0], stack[top, 1], stack[top, 2]
        parent, is_left, n_known = stack[top, 3], stack[top, 4], stack[top, 5]
        impurity = stack_impurity[top]
        top -= 1
        m = end - start
        sum_total = 0.0
        sq_total = 0.0
        wn = 0.0
        for p in range(start, end):
            w_y = 1.0 * y[samples[p]]
            sum_total += w_y
            sq_total += w_y * y[samples[p]]
            wn += 1.0
        is_leaf = depth >= max_depth or m < 2
        if first:
            impurity = sq_total / wn - (sum_total / wn) * (sum_total / wn)
            first = False
        is_leaf = is_leaf or impurity <= EPSILON
        n_total = n_known
        impurity_left = impurity_right = 0.0
        pos = end
        if not is_leaf:
            for g in range(n_features):
                tied[g] = tie_prone[g] and harmful_tie(lists[g], start, m, X, g, dup)
            n_total = _search(X, y, tied, start, end, n_known, features, constant_features, state, samples,
                              lists, values, sum_total, wn, best)
            pos = start + np.int64(best[1])
            if pos < end:
                f = np.int64(best[2])
                threshold = best[3]
                lo, hi = start, end
                while lo < hi:  # sklearn's in-place partition (not stable)
                    if np.float64(X[samples[lo], f]) <= threshold:
                        lo += 1
                    else:
                        hi -= 1
                        samples[lo], samples[hi] = samples[hi], samples[lo]
                k = pos - start
                if k <= m - k:
                    sum_left = 0.0
                    wl = 0.0
                    for q in range(start, pos):
                        sum_left += 1.0 * y[samples[q]]
                        wl += 1.0
                else:
                    sum_left = sum_total
                    wl = wn
                    for q in range(end - 1, pos - 1, -1):
                        sum_left -= 1.0 * y[samples[q]]
                        wl -= 1.0
                wr = wn - wl
                sum_right = sum_total - sum_left
                sq_left = 0.0
                for q in range(start, pos):
                    sq_left += 1.0 * y[samples[q]] * y[samples[q]]
                sq_right = sq_total - sq_left
                impurity_left = sq_left / wl - (sum_left / wl) * (sum_left / wl)
                impurity_right = sq_right / wr - (sum_right / wr) * (sum_right / wr)
                improvement = (wn / n) * (impurity - (wr / wn * impurity_right) - (wl / wn * impurity_left))
                is_leaf = improvement + EPSILON < 0.0
            else:
                is_leaf = True
        node = count
        count += 1
        if parent >= 0:
            if is_left:
                node_left[parent] = node
            else:
                node_right[parent] = node
        node_impurity[node] = impurity
        node_weight[node] = wn
        node_value[node] = sum_total / wn
        node_left[node] = LEAF
        node_right[node] = LEAF
        node_feature[node] = -2
        node_threshold[node] = -2.0
        if is_leaf:
            continue
        f = np.int64(best[2])
        node_feature[node] = f
        node_threshold[node] = best[3]
        if depth + 1 < max_depth:  # children will be searched: pass the sorted lists down
            n_left = 0
            for q in range(start, end):
                s = lists[f, q]
                goes_left[s] = np.float64(X[s, f]) <= best[3]
                n_left += goes_left[s]
            if n_left != pos - start:
                return -1
            for g in range(n_features):
                a = start
                b = 0
                for q in range(start, end):
                    s = lists[g, q]
                    if goes_left[s]:
                        lists[g, a] = s
                        a += 1
                    else:
                        spare[b] = s
                        b += 1
                lists[g, a:end] = spare[:b]
        top += 1
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4], stack[top, 5] = (
            pos, end, depth + 1, node, 0, n_total)
        stack_impurity[top] = impurity_right
        top += 1
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3], stack[top, 4], stack[top, 5] = (
            start, pos, depth + 1, node, 1, n_total)
        stack_impurity[top] = impurity_left
    return count
