"""MTL challenge measures of seed 004 (Mao et al., §5): task conflict (GDS, eq. 5), task dominance (GMS, eq. 6),
feature disentanglement (FD, eqs. 7-8), and the ranking similarity (RS, eq. 9) that scores a measure against
test performance. Pure functions on tensors; computations in float64.

Conventions where the equations are undefined (documented choices, not in the paper):
* GDS: a zero task gradient has no direction; its cosine with any other gradient counts as 0.
* GMS: beta_ij = 2 |g_i| |g_j| / (|g_i|^2 + |g_j|^2) is 0 when exactly one gradient is zero (the formula) and
  counts as 1 when both are zero (equal magnitudes).
* FD: at a location j where every task's saliency |dL_i/dZ_j| is 0, p_.j is undefined (0/0); such locations
  are left out of the mean and counted in `n_excluded`. Eq. 7 is used as written (0 log 0 = 0); the
  "(smoothened)" of the paper's Fig. 1 caption is not defined anywhere, so no smoothing is applied.
* RS: "R(a_i) > R(a_j)" is evaluated on the values themselves; tied values are "not greater" both ways.
GDS and GMS need at least 2 tasks (T(T-1) = 0 otherwise) and raise for one; FD is defined (0) for one task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mtlens.errors import MtlensError


@dataclass(frozen=True)
class GDSResult:
    """Gradient direction similarity: mean pairwise cosine of the task gradients, in [-1, 1]."""

    gds: float
    n_tasks: int
    n_zero_gradients: int


@dataclass(frozen=True)
class GMSResult:
    """Gradient magnitude similarity: mean pairwise 2|g_i||g_j| / (|g_i|^2 + |g_j|^2), in [0, 1]."""

    gms: float
    n_tasks: int
    n_zero_gradients: int


@dataclass(frozen=True)
class FDResult:
    """Feature disentanglement: mean over locations of the entropy (nats) of the saliency across tasks."""

    fd: float
    #: log T, the largest possible value (saliency spread equally over all tasks).
    max_entropy: float
    n_locations: int
    #: Locations left out because every task's saliency there is 0.
    n_excluded: int


@dataclass(frozen=True)
class RankingSimilarity:
    """Ranking similarity S (eq. 9) between two orderings of the same runs, and its symmetric form |S - 1/2|."""

    similarity: float
    symmetric: float
    n_runs: int


def _task_matrix(x: torch.Tensor, name: str, min_tasks: int) -> torch.Tensor:
    """Returns x as a float64 [T, P] matrix, or raises if its shape or values are unusable."""
    if not isinstance(x, torch.Tensor):
        raise MtlensError(f"{name}: expected a torch tensor of per-task gradients [T, ...], got {type(x).__name__}")
    if x.ndim < 2:
        raise MtlensError(f"{name}: expected per-task gradients of shape [T, ...], got shape {tuple(x.shape)}")
    if x.shape[0] < min_tasks:
        raise MtlensError(f"{name}: needs at least {min_tasks} tasks (it averages over task pairs), got {x.shape[0]}")
    if x[0].numel() == 0:
        raise MtlensError(f"{name}: the per-task gradients are empty (shape {tuple(x.shape)})")
    m = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    if not bool(torch.isfinite(m).all()):
        t = int((~torch.isfinite(m)).any(1).nonzero()[0, 0])
        raise MtlensError(f"{name}: the gradient of task {t} has NaN or infinite entries; check that task's loss")
    return m


def _off_diagonal_mean(pairwise: torch.Tensor) -> float:
    t = pairwise.shape[0]
    return float((pairwise.sum() - pairwise.diagonal().sum()) / (t * (t - 1)))


def gradient_direction_similarity(jacobian: torch.Tensor) -> GDSResult:
    """Returns GDS (eq. 5): the mean of cos(g_i, g_j) over ordered pairs i != j of the rows of [T, P]."""
    g = _task_matrix(jacobian, "GDS", 2)
    norms = g.norm(dim=1)
    unit = torch.where(norms[:, None] > 0, g / norms.clamp_min(torch.finfo(g.dtype).tiny)[:, None], 0.0)
    cos = (unit @ unit.T).clamp(-1.0, 1.0)
    return GDSResult(gds=_off_diagonal_mean(cos), n_tasks=g.shape[0], n_zero_gradients=int((norms == 0).sum()))


def gradient_magnitude_similarity(jacobian: torch.Tensor) -> GMSResult:
    """Returns GMS (eq. 6): the mean of 2|g_i||g_j| / (|g_i|^2 + |g_j|^2) over ordered pairs i != j."""
    g = _task_matrix(jacobian, "GMS", 2)
    n = g.norm(dim=1)
    num = 2 * n[:, None] * n[None, :]
    den = n[:, None] ** 2 + n[None, :] ** 2
    beta = torch.where(den > 0, num / den.clamp_min(torch.finfo(g.dtype).tiny), 1.0)
    return GMSResult(gms=_off_diagonal_mean(beta), n_tasks=g.shape[0], n_zero_gradients=int((n == 0).sum()))


def feature_disentanglement(feature_grads: torch.Tensor) -> FDResult:
    """Returns FD (eqs. 7-8) of the feature-level gradients [T, N, ...] (or [T, N*d]) of one batch.

    Every element j of the shared representation is a location; p_ij = |dL_i/dZ_j| / sum_k |dL_k/dZ_j| and
    FD is the mean over locations of -sum_i p_ij log p_ij (natural log).
    """
    sal = _task_matrix(feature_grads, "FD", 1).abs()
    total = sal.sum(0)
    keep = total > 0
    n_locations = int(total.numel())
    if not bool(keep.any()):
        raise MtlensError("FD: every feature-level gradient is 0, so no location has a saliency distribution")
    p = sal[:, keep] / total[keep]
    entropy = -torch.special.xlogy(p, p).sum(0)
    t = sal.shape[0]
    return FDResult(
        fd=float(entropy.mean()),
        max_entropy=float(torch.log(torch.tensor(float(t), dtype=torch.float64))),
        n_locations=n_locations,
        n_excluded=n_locations - int(keep.sum()),
    )


def _vector(values: Sequence[float] | torch.Tensor, name: str) -> torch.Tensor:
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if not bool(torch.isfinite(v).all()):
        i = int((~torch.isfinite(v)).nonzero()[0, 0])
        raise MtlensError(f"ranking similarity: {name} of run {i} is {float(v[i])}; every run needs a finite value")
    return v


def ranking_similarity(
    scores: Sequence[float] | torch.Tensor, performance: Sequence[float] | torch.Tensor
) -> RankingSimilarity:
    """Returns S (eq. 9): the fraction of ordered pairs (i, j), i != j, on which [s_i > s_j] == [p_i > p_j],
    and |S - 0.5|, for one measure's score and one test performance per run."""
    s, p = _vector(scores, "the measure score"), _vector(performance, "the performance")
    if s.shape != p.shape:
        raise MtlensError(
            f"ranking similarity: {s.numel()} measure scores but {p.numel()} performances; give one per run"
        )
    n = s.numel()
    if n < 2:
        raise MtlensError(f"ranking similarity: needs at least 2 runs to compare orderings, got {n}")
    agree = (s[:, None] > s[None, :]) == (p[:, None] > p[None, :])
    sim = (int(agree.sum()) - n) / (n * (n - 1))  # the diagonal always agrees (False == False)
    return RankingSimilarity(similarity=sim, symmetric=abs(sim - 0.5), n_runs=n)


def trajectory_score(values: Sequence[float] | torch.Tensor, last: int = 50) -> float:
    """Returns the mean of the last `last` recorded values of a measure (§5.5: the run's score for RS)."""
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if last < 1:
        raise MtlensError(f"trajectory score: last must be >= 1, got {last}")
    if v.numel() < last:
        raise MtlensError(
            f"trajectory score: the trajectory has {v.numel()} values, fewer than last={last}; "
            f"record more often (smaller `every`) or pass last={max(v.numel(), 1)}"
        )
    tail = v[-last:]
    if not bool(torch.isfinite(tail).all()):
        raise MtlensError("trajectory score: the last values contain NaN or infinity; check the recorded measure")
    return float(tail.mean())


def ranking_similarity_of_trajectories(
    trajectories: Sequence[Sequence[float]], performance: Sequence[float] | torch.Tensor, last: int = 50
) -> RankingSimilarity:
    """Returns RS between runs ordered by their measure trajectories (mean of the last `last` values) and their
    test performance."""
    return ranking_similarity([trajectory_score(t, last) for t in trajectories], performance)
