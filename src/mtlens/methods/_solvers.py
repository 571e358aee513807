"""Small solvers on the [T, T] Gram matrix of the task gradients (float64 numpy, T is at most a few dozen).

- `min_norm_weights`: the minimum-norm point of the convex hull of the gradients (MGDA): exactly, by Wolfe's
  min-norm-point algorithm, or by the Frank-Wolfe iteration of Sener & Koltun (2018, Algorithm 2).
- `nash_weights`: the Nash bargaining weights of Navon et al. (2022): alpha > 0 with G alpha = 1 / alpha.
- `fair_weights`: the alpha-fair weights of FairGrad (Ban & Ji 2024): x > 0 with G x = x^(-1/alpha).
- `cagrad_weights`: the dual sub-problem of CAGrad (Liu et al. 2021) on the simplex, with scipy's SLSQP as the
  authors' code does.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from mtlens.errors import MtlensError


def check_gram(gram: np.ndarray, where: str) -> None:
    """Raises MtlensError unless the Gram matrix is finite (the solvers' loops assume it is)."""
    if not np.all(np.isfinite(gram)):
        raise MtlensError(
            f"{where}: the Gram matrix of the task gradients is not finite (the gradients overflow); "
            "scale the losses down"
        )


def _fw_step(gram: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, float]:
    """Returns (the next Frank-Wolfe point, the duality gap) by exact line search."""
    g_alpha = gram @ alpha
    t = int(np.argmin(g_alpha))
    a = float(alpha @ g_alpha)  # |d|^2 for d = sum alpha_i g_i
    b = float(g_alpha[t])  # <d, g_t>
    c = float(gram[t, t])  # |g_t|^2
    gap = a - b
    denom = a - 2.0 * b + c  # |d - g_t|^2
    gamma = 0.0 if denom <= 0.0 else min(max(gap / denom, 0.0), 1.0)
    step = -alpha * gamma
    step[t] += gamma
    return alpha + step, gap


def _affine_min_norm(gram: np.ndarray, support: list[int], where: str) -> np.ndarray:
    """Returns the weights (sum 1) of the minimum-norm point of the affine hull of the support's gradients."""
    k = len(support)
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = gram[np.ix_(support, support)]
    kkt[:k, k] = 1.0
    kkt[k, :k] = 1.0
    rhs = np.zeros(k + 1)
    rhs[k] = 1.0
    try:
        sol, *_ = np.linalg.lstsq(kkt, rhs, rcond=None)
    except np.linalg.LinAlgError as err:
        raise MtlensError(f"{where}: the min-norm solver failed ({err}); check the task gradients") from err
    if not np.all(np.isfinite(sol)):
        raise MtlensError(f"{where}: the min-norm solver produced non-finite weights; check the task gradients")
    return sol[:k]


def wolfe_min_norm(gram: np.ndarray, tol: float = 1e-12, max_iter: int = 1000, where: str = "mgda") -> np.ndarray:
    """Returns the exact minimum-norm simplex weights by Wolfe's (1976) min-norm-point algorithm on the Gram matrix.

    A corral S of gradients is grown by the vertex most opposed to the current point x while <x, g_j> < |x|^2,
    and the point is moved to the min-norm point of S's affine hull, dropping gradients whose weight would turn
    negative; it ends in finitely many steps at the point whose KKT conditions hold. Both loops are bounded
    (a minor cycle drops a gradient each turn, so it has at most |S| turns); running out raises MtlensError.
    """
    check_gram(gram, where)
    n = gram.shape[0]
    scale = max(float(np.max(np.diag(gram))), 1e-300)
    first = int(np.argmin(np.diag(gram)))
    support, lam = [first], np.array([1.0])
    for _ in range(max_iter):
        x_dots = gram[:, support] @ lam  # <x, g_i> for every i
        norm_sq = float(lam @ x_dots[support])
        j = int(np.argmin(x_dots))
        if x_dots[j] >= norm_sq - tol * scale or j in support:
            weights = np.zeros(n)
            weights[support] = lam
            return weights
        support.append(j)
        lam = np.append(lam, 0.0)
        for _ in range(len(support) + 1):  # minor cycle: towards the affine min-norm point, inside the simplex
            alpha = _affine_min_norm(gram, support, where)
            if np.all(alpha > 1e-15):
                lam = alpha
                break
            neg = alpha <= 1e-15
            theta = float(np.min(lam[neg] / np.maximum(lam[neg] - alpha[neg], 1e-300)))
            lam = np.clip(lam + theta * (alpha - lam), 0.0, None)
            keep = lam > 1e-15
            support = [s for s, k in zip(support, keep) if k]
            lam = lam[keep] / lam[keep].sum()
        else:
            raise MtlensError(f"{where}: the min-norm solver's minor cycle did not end; check the task gradients")
    raise MtlensError(f"{where}: the min-norm solver did not converge in {max_iter} steps; check the task gradients")


def min_norm_weights(
    gram: np.ndarray, solver: str = "exact", max_iter: int = 250, tol: float = 1e-5, where: str = "mgda"
) -> np.ndarray:
    """Returns the simplex weights alpha minimising |sum_i alpha_i g_i|^2 for the Gram matrix G = [g_i . g_j].

    solver="exact": Wolfe's min-norm-point algorithm (finite, exact to rounding). solver="frank_wolfe": the
    iteration of Sener & Koltun (2018, Algorithm 2) from the uniform point with exact line search, stopped
    after `max_iter` = 250 steps or when the weights move by less than `tol` = 1e-5 (their code's values);
    it converges as O(1/k) when the optimum lies on a face, so it can stop visibly short of the minimum.
    """
    check_gram(gram, where)
    n = gram.shape[0]
    peak = float(np.max(np.diag(gram)))
    if peak <= 0.0:  # every gradient is zero: every convex combination is the minimum
        return np.full(n, 1.0 / n)
    # The weights do not depend on the gradients' scale, the solvers' conditioning does: the KKT systems of
    # Wolfe's algorithm mix G with ones, and at |g|^2 ~ 1e8 lstsq's cut-off dropped G's directions (zero weights).
    gram = gram / peak
    if solver == "exact":
        return wolfe_min_norm(gram, where=where)
    alpha = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new, gap = _fw_step(gram, alpha)
        converged = gap <= 0.0 or np.abs(new - alpha).sum() < tol
        alpha = new
        if converged:
            break
    return alpha


def nash_weights(
    gram: np.ndarray, init: np.ndarray, max_iter: int = 100, tol: float = 1e-12, where: str = "nash_mtl"
) -> np.ndarray:
    """Returns alpha > 0 solving G alpha = 1 / alpha, or raises MtlensError when no solution is found.

    The equations are the stationarity conditions of the strictly convex f(a) = a^T G a / 2 - sum log a_i
    (Navon et al. 2022, eq. 3 rewritten), minimised by damped Newton steps that keep a > 0 (`fair_weights` with
    alpha = 1). A minimiser exists iff no non-zero a >= 0 has G a = 0, i.e. iff the gradients have no zero
    convex combination; otherwise f is unbounded below, the iterates grow without bound, and the error says so.
    `where` names the step.
    """
    unbounded = (
        f"{where}: the bargaining solution does not exist (the task gradients have a zero convex "
        "combination: they conflict completely); use another method or level for these tasks"
    )
    return fair_weights(gram, init, 1.0, max_iter, tol, where, unbounded)


def fair_weights(
    gram: np.ndarray,
    init: np.ndarray,
    alpha: float,
    max_iter: int = 100,
    tol: float = 1e-12,
    where: str = "fairgrad",
    unbounded: str | None = None,
) -> np.ndarray:
    """Returns x > 0 solving G x = x^(-1/alpha) elementwise (alpha > 0), or raises MtlensError.

    The equations are the stationarity conditions of the strictly convex f(x) = x^T G x / 2 - sum phi(x_i) with
    phi'(x) = x^(-1/alpha) (phi = log for alpha = 1), minimised by damped Newton steps that keep x > 0, until
    the equations hold to `tol` relative to their terms. They have a solution iff the gradients have no zero
    convex combination; otherwise the iterates run off to infinity and the error (`unbounded`) says so.
    """
    check_gram(gram, where)
    n = gram.shape[0]
    x = np.asarray(init, dtype=np.float64).copy()
    if x.shape != (n,) or not np.all(np.isfinite(x)) or np.any(x <= 0.0):
        x = np.ones(n)
    inv = 1.0 / alpha

    def f(v: np.ndarray) -> float:
        phi = np.sum(np.log(v)) if alpha == 1.0 else np.sum(v ** (1.0 - inv)) / (1.0 - inv)
        return 0.5 * float(v @ gram @ v) - float(phi)

    failure = MtlensError(unbounded or (
        f"{where}: the fair allocation does not exist (the task gradients have a zero convex combination: "
        "they conflict completely); use another method or level for these tasks"
    ))
    for _ in range(max_iter):
        target = x ** (-inv)
        grad = gram @ x - target
        # converged when the equations hold to `tol` relative to their terms (Newton converges quadratically)
        if float(np.max(np.abs(grad))) <= tol * float(np.max(np.abs(target))):
            return x
        hess = gram + np.diag(inv * x ** (-inv - 1.0))
        try:  # H is positive definite for finite x; it turns singular only as x runs off to infinity
            step = -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as err:
            raise failure from err
        decrement = float(-grad @ step)
        if decrement <= 1e-28:  # nothing left to gain in float64
            return x
        t = 1.0
        neg = step < 0.0
        if np.any(neg):  # stay inside x > 0
            t = min(1.0, 0.99 * float(np.min(-x[neg] / step[neg])))
        if decrement > 1e-6:  # far from the minimum: damp by backtracking (near it, f's changes are rounding)
            f0 = f(x)
            while f(x + t * step) > f0 - 0.25 * t * decrement and t > 1e-12:
                t *= 0.5
        x = x + t * step
        if not np.all(np.isfinite(x)):
            raise MtlensError(f"{where}: the Newton solver produced non-finite weights; check the task gradients")
        if np.max(x) > 1e12:
            raise failure
    residual = float(np.linalg.norm(gram @ x - x ** (-inv)))
    raise MtlensError(
        f"{where}: the Newton solver did not converge in {max_iter} Newton steps (residual {residual:.3g}); "
        "raise max_iter or check for nearly opposite task gradients"
    )


def cagrad_weights(gram: np.ndarray, c: float, where: str = "cagrad") -> np.ndarray:
    """Returns the simplex weights w minimising w^T G b + c |g0| sqrt(w^T G w), b = 1/T, |g0|^2 = mean(G).

    This is the dual problem of CAGrad (Liu et al. 2021, eq. 4), solved with SLSQP as in the authors' code.
    The Gram matrix is first divided by |g0|^2, which leaves the minimiser unchanged and makes SLSQP's
    absolute tolerance mean the same at every gradient scale (the authors' code solves it unscaled, where
    tiny gradients stop the solver at its starting point). `where` names the step in the error.
    """
    check_gram(gram, where)
    n = gram.shape[0]
    g0_sq = float(gram.mean())
    a = gram / g0_sq
    b = np.full(n, 1.0 / n)
    ab = a @ b

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        aw = a @ w
        root = np.sqrt(max(float(w @ aw), 0.0) + 1e-12)
        return float(w @ ab) + c * root, ab + c * aw / root

    res = minimize(
        objective,
        b.copy(),
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints=({"type": "eq", "fun": lambda w: 1.0 - w.sum(), "jac": lambda w: -np.ones_like(w)},),
        options={"ftol": 1e-12, "maxiter": 200},
    )
    if not res.success or not np.all(np.isfinite(res.x)):
        raise MtlensError(f"{where}: the CAGrad sub-problem solver (scipy SLSQP) failed: {res.message}")
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()
