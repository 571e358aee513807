"""The pieces of scikit-learn's tree splitter whose exact behaviour decides which numbers come out.

scikit-learn (1.x, checked against 1.9.1) sorts a node's samples with its own introsort (median-of-3 pivot,
three-way partition, heapsort past depth 2*log2(n), insertion sort below 16 elements) and draws features with
its own xorshift generator. The sort is not stable: where two different samples share a feature value, the
order it leaves them in changes later floating-point sums. These functions behave as those in
sklearn/utils/_sorting.pyx and sklearn/utils/_random.pxd do, so `_gbt_tree` can reproduce a node exactly
when it has to; they are written here from the algorithm, for numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

RAND_R_MAX = 0x7FFFFFFF
_MASK32 = 0xFFFFFFFF


@njit(cache=True, nogil=True)
def rand_int(low: int, high: int, state: np.ndarray) -> int:
    """Returns an integer in [low, high) from the xorshift state (one uint32 in `state[0]`, advanced)."""
    s = np.int64(state[0])
    if s == 0:
        s = 1
    s ^= (s << 13) & _MASK32
    s ^= s >> 17
    s ^= (s << 5) & _MASK32
    state[0] = s
    return low + (s % (RAND_R_MAX + 1)) % (high - low)


@njit(cache=True, nogil=True, inline="always")
def _swap(values: np.ndarray, index: np.ndarray, i: int, j: int) -> None:
    values[i], values[j] = values[j], values[i]
    index[i], index[j] = index[j], index[i]


@njit(cache=True, nogil=True)
def _median3(values: np.ndarray, lo: int, n: int) -> np.float32:
    a, b, c = values[lo], values[lo + n // 2], values[lo + n - 1]
    if a < b:
        if b < c:
            return b
        if a < c:
            return c
        return a
    if b < c:
        if a < c:
            return a
        return c
    return b


@njit(cache=True, nogil=True)
def _insertion_sort(values: np.ndarray, index: np.ndarray, lo: int, n: int) -> None:
    for i in range(lo + 1, lo + n):
        v, s = values[i], index[i]
        j = i
        while j > lo and values[j - 1] > v:
            values[j] = values[j - 1]
            index[j] = index[j - 1]
            j -= 1
        values[j] = v
        index[j] = s


@njit(cache=True, nogil=True)
def _sift_down(values: np.ndarray, index: np.ndarray, lo: int, start: int, end: int) -> None:
    root = start
    while True:
        child = root * 2 + 1
        top = root
        if child < end and values[lo + top] < values[lo + child]:
            top = child
        if child + 1 < end and values[lo + top] < values[lo + child + 1]:
            top = child + 1
        if top == root:
            return
        _swap(values, index, lo + root, lo + top)
        root = top


@njit(cache=True, nogil=True)
def _heapsort(values: np.ndarray, index: np.ndarray, lo: int, n: int) -> None:
    start = (n - 2) // 2
    while True:
        _sift_down(values, index, lo, start, n)
        if start == 0:
            break
        start -= 1
    end = n - 1
    while end > 0:
        _swap(values, index, lo, lo + end)
        _sift_down(values, index, lo, 0, end)
        end -= 1


@njit(cache=True, nogil=True)
def introsort3(values: np.ndarray, index: np.ndarray, lo: int, n: int) -> None:
    """Sorts values[lo:lo+n] (float32) and index[lo:lo+n] together, leaving ties where sklearn's sort does."""
    if n == 0:
        return
    stack = np.empty((2 * 64 + 8, 3), dtype=np.int64)  # (lo, n, maxd); depth is bounded by maxd <= 2*63
    top = 0
    stack[0, 0], stack[0, 1], stack[0, 2] = lo, n, 2 * int(math.log2(n))
    while top >= 0:
        lo, n, maxd = stack[top, 0], stack[top, 1], stack[top, 2]
        top -= 1
        while n > 15:
            if maxd <= 0:
                _heapsort(values, index, lo, n)
                n = 0
                break
            maxd -= 1
            pivot = _median3(values, lo, n)
            i = left = 0
            right = n
            while i < right:
                if values[lo + i] < pivot:
                    _swap(values, index, lo + i, lo + left)
                    i += 1
                    left += 1
                elif values[lo + i] > pivot:
                    right -= 1
                    _swap(values, index, lo + i, lo + right)
                else:
                    i += 1
            # sklearn recurses on [0, left) and loops on [right, n); the parts are disjoint, so order is free
            top += 1
            stack[top, 0], stack[top, 1], stack[top, 2] = lo, left, maxd
            lo += right
            n -= right
        if n > 0:
            _insertion_sort(values, index, lo, n)
