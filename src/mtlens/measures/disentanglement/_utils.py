"""Input checks, histogram discretisation and discrete mutual information, as disentanglement_lib computes them.

Layout note: disentanglement_lib stacks the encoder's [batch, d] outputs into a C-ordered [N, d] array and then
works on its transpose ([d, N] views). numpy's float sums use pairwise summation along a contiguous reduction
axis and plain running sums otherwise, so the memory layout of an array changes the last bits of a mean or a
variance. The metric functions therefore take row-per-sample arrays and apply the reference's expressions to
the same `.T` views, which makes their numbers equal to the reference's bit for bit.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import mutual_info_score

from mtlens.errors import MtlensError


# Every metric squares codes (variances, covariances, classifiers' norms). Past this magnitude squares overflow
# float64 sums and scikit-learn's liblinear (SAP) stops returning (seen from ~1e77 with scikit-learn 1.9), so
# such codes are refused.
MAX_CODE_MAGNITUDE = 1e50
# float32 codes are computed in float64 when a column's largest magnitude lies outside this range: their
# squares would leave float32's normal range (variances overflow to inf or underflow to 0).
_FLOAT32_SAFE = (1e-15, 1e15)


def as_float_array(values: object, name: str) -> np.ndarray:
    """Returns `values` as a finite float array of any shape, in the dtype the metrics compute in.

    float32 and float64 keep their dtype (as the reference computes), except float32 columns whose
    magnitude would over- or underflow when squared, which become float64; float16 becomes float64 (its
    sums overflow past 65504); integers and bools become float64. NaN / inf and magnitudes past
    `MAX_CODE_MAGNITUDE` raise MtlensError.
    """
    if hasattr(values, "detach"):  # torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise MtlensError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f" or arr.dtype == np.float16:
        arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise MtlensError(f"{name} contains {arr[where]} at index {where}; the encoder must return finite codes")
    if arr.size == 0:
        return arr
    peaks = np.abs(arr.reshape(-1, arr.shape[-1])).max(axis=0).astype(np.float64)
    if peaks.max() > MAX_CODE_MAGNITUDE:
        raise MtlensError(
            f"{name} reach {peaks.max():.3g} in dimension {int(np.argmax(peaks))}; the metrics square codes and "
            f"take magnitudes up to {MAX_CODE_MAGNITUDE:g}: rescale the codes"
        )
    if arr.dtype == np.float32:
        nonzero = peaks[peaks > 0]
        if nonzero.size and (nonzero.max() > _FLOAT32_SAFE[1] or nonzero.min() < _FLOAT32_SAFE[0]):
            arr = arr.astype(np.float64)
    return arr


def as_codes(codes: object, name: str = "codes", min_dims: int = 1) -> np.ndarray:
    """Returns `codes` as a finite float array [N, d] in the dtype the metrics compute in (`as_float_array`)."""
    if hasattr(codes, "detach"):
        codes = codes.detach().cpu().numpy()
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise MtlensError(f"{name} must be a 2-D array [num_points, num_codes], got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise MtlensError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.shape[0] < 2:
        raise MtlensError(f"{name} has {arr.shape[0]} point(s); the metrics need at least 2 points")
    if arr.shape[1] < min_dims:
        raise MtlensError(f"{name} has {arr.shape[1]} code dimension(s); this metric needs at least {min_dims}")
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, dtype=bool)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise MtlensError(
            f"{name} contains {arr[row, col]} at point {row}, dimension {col}; the encoder must return finite codes"
        )
    return as_float_array(arr, name)


def as_factors(factors: object, num_points: int, name: str = "factors", min_factors: int = 1) -> np.ndarray:
    """Returns `factors` as an int64 array [N, K] of class indices, checked against `num_points`."""
    if hasattr(factors, "detach"):
        factors = factors.detach().cpu().numpy()
    arr = np.asarray(factors)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise MtlensError(f"{name} must be a 2-D array [num_points, num_factors], got shape {arr.shape}")
    if arr.shape[0] != num_points:
        raise MtlensError(
            f"{name} has {arr.shape[0]} rows but the codes have {num_points}; pass one row per point for both"
        )
    if arr.shape[1] < min_factors:
        raise MtlensError(f"{name} has {arr.shape[1]} factor(s); this metric needs at least {min_factors}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise MtlensError(f"{name} must hold integer class indices (discrete factors), got non-integer values")
    elif arr.dtype.kind not in "iub":
        raise MtlensError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    constant = [k for k in range(arr.shape[1]) if np.all(arr[:, k] == arr[0, k])]
    if constant:
        raise MtlensError(
            f"{name} column {constant[0]} takes a single value in these {num_points} points, so it is not a factor "
            "(like dSprites' colour); drop it or sample more points"
        )
    return arr


def as_test_factors(factors: object, num_points: int, name: str = "factors_test") -> np.ndarray:
    """Returns test-split factors [N, K] as int64 class indices (a test split may hold one value of a factor)."""
    if hasattr(factors, "detach"):
        factors = factors.detach().cpu().numpy()
    arr = np.asarray(factors)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != num_points:
        raise MtlensError(f"{name} has shape {arr.shape}, expected [{num_points}, num_factors] (one row per point)")
    if arr.dtype.kind == "f" and (not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr))):
        raise MtlensError(f"{name} must hold integer class indices, got non-integer values")
    if arr.dtype.kind not in "fiub":
        raise MtlensError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def check_num_bins(num_bins: int, num_points: int) -> int:
    """Returns `num_bins` after checking 1 <= num_bins <= num_points."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise MtlensError(f"num_bins must be a positive integer, got {num_bins!r}")
    if num_bins > num_points:
        raise MtlensError(f"num_bins={num_bins} is more than the {num_points} points; use fewer bins or more points")
    return int(num_bins)


def histogram_discretize(values: np.ndarray, num_bins: int) -> np.ndarray:
    """Returns int64 bin numbers [N, d] (1..num_bins): numpy's equal-width histogram edges per column, digitized.

    Same as disentanglement_lib's `_histogram_discretize`: `np.digitize(x, np.histogram(x, num_bins)[1][:-1])`
    per dimension; the edges are computed in the input's dtype, exactly as np.histogram computes them.
    """
    out = np.empty(values.shape, dtype=np.int64)
    for k in range(values.shape[1]):
        column = values[:, k]
        try:
            edges = np.histogram_bin_edges(column, num_bins)
        except ValueError:  # numpy: "Too many bins for data range"
            raise MtlensError(
                f"code dimension {k} spans only [{column.min()!r}, {column.max()!r}], too narrow for {num_bins} "
                f"equal-width bins in {column.dtype}; use fewer bins or codes that vary more"
            ) from None
        out[:, k] = np.digitize(column, edges[:-1])
    return out


def _class_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns per column the dense class index [N, K] and the number of classes [K]."""
    idx = np.empty(labels.shape, dtype=np.int64)
    sizes = np.empty(labels.shape[1], dtype=np.int64)
    for k in range(labels.shape[1]):
        uniq, inv = np.unique(labels[:, k], return_inverse=True)
        idx[:, k] = inv.reshape(-1)
        sizes[k] = uniq.size
    return idx, sizes


def discrete_mutual_info(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Returns the mutual information in nats [p, q] between columns of `pred` [N, p] and of `true` [N, q].

    Entry (i, j) equals `sklearn.metrics.mutual_info_score(true[:, j], pred[:, i])` bit for bit (the
    reference's order of arguments): the contingency table is counted with one bincount per pair, with the
    classes of each side in sorted order as sklearn orders them, and handed to sklearn's own formula.
    """
    p_idx, p_sizes = _class_indices(pred)
    t_idx, t_sizes = _class_indices(true)
    out = np.zeros((pred.shape[1], true.shape[1]))
    for j in range(true.shape[1]):
        for i in range(pred.shape[1]):
            cells = t_idx[:, j] * p_sizes[i] + p_idx[:, i]
            table = np.bincount(cells, minlength=t_sizes[j] * p_sizes[i]).reshape(t_sizes[j], p_sizes[i])
            out[i, j] = mutual_info_score(None, None, contingency=table)
    return out


def discrete_entropy(labels: np.ndarray) -> np.ndarray:
    """Returns the entropy in nats of each column of `labels` [N, K] (the reference's MI of a column with itself)."""
    idx, _ = _class_indices(labels)
    out = np.zeros(labels.shape[1])
    for k in range(labels.shape[1]):
        counts = np.bincount(idx[:, k])
        out[k] = mutual_info_score(None, None, contingency=np.diag(counts))
    return out


def factor_keys(names: tuple[str, ...] | None, count: int, prefix: str = "factor") -> tuple[str, ...]:
    """Returns `names` if given (checked against `count`), else ("factor_0", "factor_1", ...)."""
    if names is None:
        return tuple(f"{prefix}_{k}" for k in range(count))
    if len(names) != count:
        raise MtlensError(f"got {len(names)} {prefix} names for {count} {prefix}s; pass one name per {prefix}")
    return tuple(names)
