"""Task similarity from learned noise (seed 001 §V-B): dissimilarity matrices, clustering success, success rates.

- `task_dissimilarity(log_var, metric)`: eq. 11, the L1 distance between the tasks' noise log-variance
  vectors (rows of a [T, d] matrix), or 1 - |cos| between them (the authors' code offers both).
- `clustering_success(distances, in_pairs)`: Table V's criterion -- the clustering succeeds when the largest
  distance between tasks of the same cluster is smaller than the smallest distance between tasks of
  different clusters (strictly: a tie is a failure, as in the authors' `eval_distance_matrix`), with the
  margin min_out - max_in so that near-misses show.
- `success_rate(successes)`: the fraction of successful trials with a Wilson score interval.

Pure functions on arrays: validated inputs, one-line errors, frozen dataclass results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from mtlens.errors import MtlensError

METRICS = ("l1", "cos")


@dataclass(frozen=True, eq=False)
class TaskDissimilarity:
    """A symmetric [T, T] matrix of task dissimilarities (zero diagonal) and the metric that made it."""

    matrix: np.ndarray
    metric: str

    def as_dict(self, prefix: str = "distance") -> dict[str, float]:
        """Returns {"prefix/i/j": value} for every pair i < j."""
        t = self.matrix.shape[0]
        return {f"{prefix}/{i}/{j}": float(self.matrix[i, j]) for i in range(t) for j in range(i + 1, t)}


@dataclass(frozen=True)
class ClusteringResult:
    """Table V's criterion on one distance matrix: success = max_in < min_out; margin = min_out - max_in."""

    success: bool
    margin: float
    max_in: float
    min_out: float
    mean_in: float
    mean_out: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Returns the fields as floats (success as 0.0 / 1.0), keys prefixed with `prefix/` when given."""
        sep = "/" if prefix else ""
        values = {"success": float(self.success), "margin": self.margin, "max_in": self.max_in,
                  "min_out": self.min_out, "mean_in": self.mean_in, "mean_out": self.mean_out}
        return {f"{prefix}{sep}{k}": float(v) for k, v in values.items()}


@dataclass(frozen=True)
class SuccessRate:
    """Successes out of trials, the rate, and its two-sided binomial confidence interval [low, high]."""

    successes: int
    trials: int
    rate: float
    low: float
    high: float
    confidence: float
    interval: str = "wilson"


def _as_matrix(values: object, name: str) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise MtlensError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise MtlensError(f"{name} must be a 2-D array, got shape {arr.shape}")
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        i, j = bad[0]
        raise MtlensError(f"{name} holds {arr[i, j]} at [{i}, {j}]; it must be finite")
    return arr


def task_dissimilarity(log_var: object, metric: str = "l1") -> TaskDissimilarity:
    """Returns the [T, T] dissimilarities of the rows of `log_var` [T, d] (seed 001 eq. 11 for metric="l1").

    "l1": sum_i |s_a,i - s_b,i|. "cos": 1 - |cos(s_a, s_b)|, which needs every row to be non-zero.
    """
    if metric not in METRICS:
        raise MtlensError(f"unknown dissimilarity metric {metric!r}; choose one of {', '.join(METRICS)}")
    s = _as_matrix(log_var, "log_var")
    if s.shape[0] < 2 or s.shape[1] < 1:
        raise MtlensError(f"log_var must be [T, d] with T >= 2 tasks and d >= 1 dims, got shape {s.shape}")
    if metric == "l1":
        matrix = np.abs(s[:, None, :] - s[None, :, :]).sum(-1)
    else:
        norms = np.linalg.norm(s, axis=1)
        zero = np.flatnonzero(norms == 0)
        if len(zero):
            raise MtlensError(f"log_var row {zero[0]} is all zeros; its cosine to other tasks is undefined, use metric='l1'")
        unit = s / norms[:, None]
        matrix = 1.0 - np.clip(np.abs(unit @ unit.T), 0.0, 1.0)
        np.fill_diagonal(matrix, 0.0)
    return TaskDissimilarity(matrix, metric)


def _task_index(task: object, names: Sequence[str] | None, n_tasks: int, pair: object) -> int:
    if isinstance(task, str):
        if names is None or task not in names:
            known = ", ".join(names) if names is not None else f"indices 0..{n_tasks - 1} (no names given)"
            raise MtlensError(f"pair {pair!r} names unknown task {task!r}; the tasks are {known}")
        return list(names).index(task)
    if isinstance(task, bool) or not isinstance(task, (int, np.integer)) or not 0 <= task < n_tasks:
        raise MtlensError(f"pair {pair!r} names unknown task {task!r}; task indices are 0..{n_tasks - 1}")
    return int(task)


def pairs_from_clusters(clusters: Iterable[Sequence[object]]) -> list[tuple[object, object]]:
    """Returns every within-cluster pair (a, b), a before b, of clusters given as lists of tasks."""
    out: list[tuple[object, object]] = []
    for cluster in clusters:
        members = list(cluster)
        out += [(members[i], members[j]) for i in range(len(members)) for j in range(i + 1, len(members))]
    return out


def clustering_success(distances: object, in_pairs: Iterable[Sequence[object]],
                       names: Sequence[str] | None = None) -> ClusteringResult:
    """Returns Table V's clustering criterion for a [T, T] distance matrix and the known in-cluster pairs.

    Pairs name tasks by index or, when `names` is given, by name; every other pair i < j is between-cluster.
    """
    d = _as_matrix(distances, "distances")
    t = d.shape[0]
    if d.shape != (t, t) or t < 2:
        raise MtlensError(f"distances must be a square [T, T] matrix with T >= 2, got shape {d.shape}")
    if not np.allclose(d, d.T, rtol=1e-6, atol=1e-9):
        i, j = np.argwhere(~np.isclose(d, d.T, rtol=1e-6, atol=1e-9))[0]
        raise MtlensError(f"distances must be symmetric; [{i}, {j}] = {d[i, j]} but [{j}, {i}] = {d[j, i]}")
    if names is not None and len(names) != t:
        raise MtlensError(f"{len(names)} task names for a {t} x {t} distance matrix; give one name per task")
    inside = np.zeros((t, t), dtype=bool)
    for pair in in_pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise MtlensError(f"a cluster pair is two tasks, got {pair!r}")
        a, b = (_task_index(task, names, t, pair) for task in pair)
        if a == b:
            raise MtlensError(f"pair {pair!r} pairs a task with itself; in-cluster pairs join two different tasks")
        inside[a, b] = inside[b, a] = True
    upper = np.triu(np.ones((t, t), dtype=bool), k=1)
    d_in, d_out = d[inside & upper], d[~inside & upper]
    if d_in.size == 0 or d_out.size == 0:
        raise MtlensError(
            f"the pairs give {d_in.size} in-cluster and {d_out.size} between-cluster pairs; the criterion needs both"
        )
    max_in, min_out = float(d_in.max()), float(d_out.min())
    return ClusteringResult(max_in < min_out, min_out - max_in, max_in, min_out, float(d_in.mean()), float(d_out.mean()))


def success_rate(successes: Iterable[bool], confidence: float = 0.95) -> SuccessRate:
    """Returns the success rate of trials (True / False each; a failed or diverged trial counts as False)
    with the Wilson score interval (Wilson 1927; no continuity correction), which stays inside [0, 1] and
    keeps its coverage at rates near 0 or 1 and at small numbers of trials, unlike the normal (Wald) interval.
    """
    values = list(successes)
    if not values:
        raise MtlensError("success_rate needs at least one trial, got none")
    bad = [v for v in values if not isinstance(v, (bool, np.bool_))]
    if bad:
        raise MtlensError(f"success_rate takes True / False per trial, got {bad[0]!r}")
    if not 0.0 < confidence < 1.0:
        raise MtlensError(f"confidence must be in (0, 1), got {confidence}")
    n, k = len(values), int(sum(bool(v) for v in values))
    p = k / n
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return SuccessRate(k, n, p, max(0.0, centre - half), min(1.0, centre + half), confidence)
