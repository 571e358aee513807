"""Small quadratic programs on the [T, T] Gram matrix (float64 numpy): projections with linear constraints, and
the Euclidean projection onto the simplex.

`nonneg_qp` solves min_x x^T Q x / 2 - b^T x subject to x >= 0 for a positive semi-definite Q. It is the dual of
a projection: with Q_jk = <n_j, n_k> and b_j = t_j - <n_j, p>, its solution x gives d = p + sum_j x_j n_j, the
point closest to p with <n_j, d> >= t_j for every j. UPGrad and DualProj (the projection of a combination of
the gradients onto their dual cone) and PCD (the primary gradient under progress constraints) are such
projections. The method is the dual active-set algorithm of Goldfarb & Idnani (1983, Math. Programming 27) for
an identity Hessian, written on Q only: it keeps d stationary for the constraints held active, adds the most
violated constraint, and drops an active one whose multiplier would turn negative. It ends, exactly, in
finitely many steps; a constraint whose normal is a combination of the active ones with no multiplier to
trade is infeasible, and the problem is reported infeasible. Q may be singular (more tasks than parameters,
repeated gradients): a normal is treated as dependent on the active ones when its orthogonal part has a
squared norm below `dependence_tol` times its own.
"""

from __future__ import annotations

import numpy as np

from mtlens.errors import MtlensError


def nonneg_qp(
    q: np.ndarray,
    b: np.ndarray,
    *,
    tol: float = 1e-12,
    dependence_tol: float = 1e-9,
    max_iter: int | None = None,
    where: str = "qp",
) -> tuple[np.ndarray, bool]:
    """Returns (x, feasible): x >= 0 minimising x^T Q x / 2 - b^T x (Q positive semi-definite, [m, m]).

    A constraint counts as met when its slack (Q x - b)_j is above -tol times the largest diagonal entry of Q.
    When infeasible (the projection problem has no point meeting every constraint), x is the multipliers
    reached when that was found. Each iteration adds or drops one constraint; `max_iter` (default 20 m + 20)
    bounds them, and running out raises MtlensError naming `where`.
    """
    m = b.shape[0]
    x = np.zeros(m)
    active: list[int] = []
    diag = np.diagonal(q)
    atol = tol * max(float(diag.max()) if m else 0.0, np.finfo(np.float64).tiny)
    limit = 20 * m + 20 if max_iter is None else max_iter
    entering: int | None = None
    for _ in range(limit):
        if entering is None:
            slack = q @ x - b
            slack[active] = 0.0  # active constraints hold with equality, up to rounding
            entering = int(np.argmin(slack))
            if slack[entering] >= -atol:
                return x, True
        p = entering
        violation = float(q[p] @ x - b[p])
        if active:
            try:
                r = np.linalg.solve(q[np.ix_(active, active)], q[active, p])
            except np.linalg.LinAlgError as err:
                raise MtlensError(f"{where}: the active-set solver failed ({err}); check the task gradients") from err
            orth = float(q[p, p] - q[p, active] @ r)  # |component of n_p orthogonal to the active normals|^2
            ratios = np.where(r > 0.0, x[active] / np.where(r > 0.0, r, 1.0), np.inf)
            k = int(np.argmin(ratios))
            partial = float(ratios[k])
        else:
            r, orth, k, partial = np.zeros(0), float(q[p, p]), -1, np.inf
        full = -violation / orth if orth > dependence_tol * q[p, p] and orth > 0.0 else np.inf
        step = min(partial, full)
        if not np.isfinite(step):
            return x, False
        if active:
            x[active] -= step * r
        x[p] += step
        if full <= partial:
            active.append(p)
            entering = None
        else:  # the multiplier of active[k] reached zero: drop that constraint, then try p again
            x[active[k]] = 0.0
            del active[k]
    raise MtlensError(f"{where}: the active-set solver did not end in {limit} steps; check the task gradients")


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Returns the Euclidean projection of v onto the probability simplex (Duchi et al. 2008, Fig. 1)."""
    v = v - v.max()  # the projection ignores a common shift; this keeps the largest entry exact at any scale
    u = np.sort(v)[::-1]
    excess = np.cumsum(u) - 1.0
    k = np.arange(1, v.shape[0] + 1)
    rho = int(k[u - excess / k > 0.0][-1])
    return np.maximum(v - excess[rho - 1] / rho, 0.0)
