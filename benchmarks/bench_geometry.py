"""Geometry measures on 10,000 x 256 representations, against references in the same run (JSON lines).

- participation ratio vs the direct numpy formula of seed 002 (np.cov, eigvalsh, (sum l)^2 / sum l^2);
- CCA vs scikit-learn's CCA (NIPALS, tight tolerance) on its first `--cca-components` correlations (it fits one
  component at a time, so it only applies to the leading few);
- linear CKA vs the feature-space formula of Kornblith et al. 2019 (x.T.dot(y) products), and the same formula
  with `@` (numpy then uses a symmetric product for x.T @ x, the trick ours uses for the whole pair).
Each line: the median seconds over --repeat runs (ours and the reference alternate, so both see the same load),
the ratio of the medians ours / reference, and the largest absolute difference. The inputs are float32 (what
an encoder returns); --dtype float64 measures float64 inputs.

    PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/bench_geometry.py [--threads 2] [--cca-components 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from mtlens.measures.geometry import cca, effective_dimensionality, linear_cka


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median_times(ours: Callable[[], object], reference: Callable[[], object], repeat: int) -> tuple[float, object, float, object]:
    """Returns (median seconds, value) of ours and of the reference, run alternately so both see the same load."""
    ours(), reference()
    t_o, t_r = [], []
    for _ in range(repeat):
        t, v_o = _timed(ours)
        t_o.append(t)
        t, v_r = _timed(reference)
        t_r.append(t)
    return statistics.median(t_o), v_o, statistics.median(t_r), v_r


def pair(n: int, d: int, seed: int = 0, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Returns two representations [n, d] whose canonical correlations are spread over (0, 0.99)."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n, d))
    rho = np.linspace(0.99, 0.01, d)
    x = s @ rng.standard_normal((d, d))
    y = (s * rho + rng.standard_normal((n, d)) * np.sqrt(1 - rho**2)) @ rng.standard_normal((d, d))
    return x.astype(dtype), y.astype(dtype)


def reference_pr(x: np.ndarray) -> float:
    lam = np.linalg.eigvalsh(np.cov(x.T))
    lam = lam[lam > 1e-10]
    return float(lam.sum() ** 2 / (lam**2).sum())


def reference_cka_dot(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean(0, keepdims=True, dtype=np.float64)
    y = y - y.mean(0, keepdims=True, dtype=np.float64)
    return float(np.linalg.norm(x.T.dot(y)) ** 2 / (np.linalg.norm(x.T.dot(x)) * np.linalg.norm(y.T.dot(y))))


def reference_cka_matmul(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean(0, keepdims=True, dtype=np.float64)
    y = y - y.mean(0, keepdims=True, dtype=np.float64)
    return float(np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def reference_cca(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cross_decomposition import CCA

    xd, yd = x.astype(np.float64), y.astype(np.float64)
    model = CCA(n_components=k, scale=True, max_iter=5000, tol=1e-12).fit(xd, yd)
    xs, ys = model.transform(xd, yd)
    return np.array([np.corrcoef(xs[:, i], ys[:, i])[0, 1] for i in range(k)])


def report(measure: str, reference: str, ours_s: float, ref_s: float, diff: float, **context: object) -> None:
    print(json.dumps({"measure": measure, "reference": reference, "ours_s": round(ours_s, 4), "reference_s": round(ref_s, 4),
                      "ratio": round(ours_s / ref_s, 3), "max_abs_diff": float(f"{diff:.3g}"),
                      "equal_1e-6": bool(diff <= 1e-6), "faster": bool(ours_s < ref_s), "under_1s": bool(ours_s < 1.0),
                      **context}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--cca-components", type=int, default=4, help="0 skips scikit-learn's CCA (minutes)")
    args = parser.parse_args()
    x, y = pair(args.n, args.d, dtype=args.dtype)
    context = {"n": args.n, "d": args.d, "dtype": args.dtype, "threads": args.threads, "repeat": args.repeat}
    with threadpool_limits(args.threads):
        t_ours, ours, t_ref, ref = median_times(lambda: effective_dimensionality(x).score, lambda: reference_pr(x), args.repeat)
        report("participation_ratio", "numpy np.cov + eigvalsh (seed 002)", t_ours, t_ref, abs(ours - ref), **context)

        t_ours, ours, t_ref, ref = median_times(lambda: linear_cka(x, y).score, lambda: reference_cka_dot(x, y), args.repeat)
        report("linear_cka", "feature-space formula, x.T.dot(y) (Kornblith et al. 2019)", t_ours, t_ref, abs(ours - ref),
               **context)
        t_ours, ours, t_ref, ref = median_times(lambda: linear_cka(x, y).score, lambda: reference_cka_matmul(x, y), args.repeat)
        report("linear_cka", "feature-space formula, x.T @ y", t_ours, t_ref, abs(ours - ref), **context)

        k = args.cca_components
        if k > 0:
            runs = [_timed(lambda: cca(x, y).correlations) for _ in range(args.repeat)]
            t_ours, ours = statistics.median(t for t, _ in runs), runs[-1][1]
            t_ref, ref = _timed(lambda: reference_cca(x, y, k))  # minutes: once
            report("cca", f"scikit-learn CCA, first {k} of {args.d} correlations", t_ours, t_ref,
                   float(np.abs(ours[:k] - ref).max()), **context)


if __name__ == "__main__":
    main()
