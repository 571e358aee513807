"""The linear probes behind `linear_decodability`: ridge regression (closed form) and multinomial logistic
regression (L-BFGS, bounded), fitted and scored on seeded cross-validation folds."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

from mtlens.errors import MtlensError

MAX_ITER = 500


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """Returns k disjoint test-index arrays covering range(n) in a seeded random order."""
    if k < 2:
        raise MtlensError(f"cross-validation needs at least 2 folds, got {k}")
    if n < 2 * k:
        raise MtlensError(f"{n} samples are too few for {k} folds; pass fewer folds or more samples")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


def ridge_r2(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
             alpha: float | None) -> float:
    """Returns the test R^2 of ridge regression with an intercept (alpha None: 1e-6 x the mean feature energy)."""
    mx, my = x_train.mean(0), y_train.mean()
    xc = x_train - mx
    gram = xc.T @ xc
    a = 1e-6 * np.trace(gram) / gram.shape[0] if alpha is None else float(alpha)
    # A constant feature gives a zero row and column: the ridge term keeps the system solvable.
    w = np.linalg.solve(gram + max(a, np.finfo(float).tiny) * np.eye(gram.shape[0]), xc.T @ (y_train - my))
    pred = (x_test - mx) @ w + my
    ss_tot = float(((y_test - y_test.mean()) ** 2).sum())
    ss_res = float(((y_test - pred) ** 2).sum())
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0  # scikit-learn's r2_score convention for a constant test target
    return 1.0 - ss_res / ss_tot


def logistic_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                      c: float = 1.0) -> float:
    """Returns the test accuracy of L2-regularised multinomial logistic regression on standardised features.

    The objective is scikit-learn's LogisticRegression(C=c) (lbfgs): 1/2 ||W||^2 + C sum_i -log p(y_i | x_i),
    intercepts unpenalised, minimised by L-BFGS with at most 500 iterations.
    """
    classes, y_idx = np.unique(y_train, return_inverse=True)
    if len(classes) < 2:
        return float(np.mean(y_test == classes[0]))
    mu, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    xs = (x_train - mu) / sd
    n, d = xs.shape
    k = len(classes)
    onehot = np.eye(k)[y_idx]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * k].reshape(d, k), theta[d * k :]
        logp = log_softmax(xs @ w + b, axis=1)
        loss = 0.5 * float((w * w).sum()) - c * float((onehot * logp).sum())
        resid = np.exp(logp) - onehot
        grad = np.concatenate([(w + c * xs.T @ resid).ravel(), c * resid.sum(0)])
        if not np.isfinite(loss):
            raise MtlensError("the logistic probe's loss became non-finite; check the codes for huge values")
        return loss, grad

    result = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITER})
    w, b = result.x[: d * k].reshape(d, k), result.x[d * k :]
    pred = classes[np.argmax(((x_test - mu) / sd) @ w + b, axis=1)]
    return float(np.mean(pred == y_test))
