"""Byzantine-robust aggregators from distributed learning, as TorchJD 0.18 offers them for Jacobian descent.

- Krum (Blanchard, El Mhamdi, Guerraoui & Stainer 2017, "Machine Learning with Adversaries: Byzantine Tolerant
  Gradient Descent", §4): each gradient is scored by the sum of its distances to its T - f - 2 nearest other
  gradients (f = `n_byzantine`, the number of gradients that may be adversarial); the `n_selected` lowest
  scores are averaged (Multi-Krum; 1 is Krum). Distances come from the Gram matrix,
  |g_i - g_j|^2 = G_ii + G_jj - 2 G_ij. The score needs at least one neighbour, so T >= f + 3 (TorchJD's
  check; the paper's convergence guarantee asks T > 2 f + 2). Equal scores go to the lower task index.
  Defaults: f = 0 (no task is adversarial in multi-task learning; Krum is then the gradient closest to its
  T - 2 nearest others, a medoid that ignores outlying tasks; TorchJD has no default), n_selected = 1 (Krum).
- Trimmed mean (Yin, Chen, Ramchandran & Bartlett 2018, "Byzantine-Robust Distributed Learning: Towards
  Optimal Statistical Rates", Definition 2): per coordinate, the `trim_number` largest and smallest values are
  dropped and the rest averaged; T >= 2 trim_number + 1. Default trim_number = 1 (TorchJD has no default).
  It is not a combination of the gradients; the weights reported are, per task, <kept part, g_t> / |g_t|^2.

A task's gradient is never adversarial in multi-task learning: these are here because TorchJD has them, as
baselines that ignore outlying tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import Aggregator, GramAggregator, compute_dtype
from mtlens.methods.graddrop import kept_fraction
from mtlens.methods.options import Integer
from mtlens.methods.registry import METHODS

_ROBUST_CLAIMS = frozenset({
    "permutation_invariant", "scale_equivariant", "finite_on_zero", "finite_on_rank1", "levels_agree"
})


def _check_tasks(name: str, n_tasks: int | None, needed: int, why: str) -> None:
    if n_tasks is not None and 1 < n_tasks < needed:
        raise MtlensError(f"{name}: {why}; got n_tasks={n_tasks}")


def krum_weights(g: torch.Tensor, n_byzantine: int, n_selected: int) -> torch.Tensor:
    """Returns the Multi-Krum weights (1 / n_selected on the selected gradients) for the Gram matrix g."""
    gram = g.numpy()
    sq = np.diagonal(gram)
    dist = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0, None))
    n = gram.shape[0]
    neighbours = n - n_byzantine - 2
    np.fill_diagonal(dist, np.inf)  # a gradient is not its own neighbour
    scores = np.sort(dist, axis=1)[:, :neighbours].sum(axis=1)
    chosen = np.argsort(scores, kind="stable")[:n_selected]
    weights = np.zeros(n)
    weights[chosen] = 1.0 / n_selected
    return torch.from_numpy(weights)


@METHODS.register("krum", aliases=("multi_krum",))
class Krum(GramAggregator):
    """Averages the n_selected gradients closest to their T - f - 2 nearest neighbours."""

    name = "krum"
    claims = _ROBUST_CLAIMS - {"permutation_invariant"}
    exemptions = {
        "permutation_invariant": (
            "equal scores go to the lower index, and with T = f + 3 (one neighbour) the two gradients of the "
            "closest pair always tie"
        ),
        "non_conflicting": "the selected gradients can point against the tasks left out",
        "scale_invariant": "the update is an average of gradients: it scales with them",
    }
    option_rules = {"n_byzantine": Integer(0), "n_selected": Integer(1)}
    n_byzantine: int
    n_selected: int

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        n_byzantine: int = 0,
        n_selected: int = 1,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, n_byzantine=n_byzantine, n_selected=n_selected)

    @property
    def min_rows(self) -> int:
        """Returns max(n_byzantine + 3, n_selected): at least one neighbour per score, enough to select."""
        return max(self.n_byzantine + 3, self.n_selected)

    def rows_reason(self) -> str:
        return (f"with n_byzantine={self.n_byzantine} and n_selected={self.n_selected} it needs at least "
                f"{self.min_rows} task gradients (n_byzantine + 3, and n_selected); lower n_byzantine")

    @classmethod
    def check_combination(cls, n_tasks: int | None, level: str, options: Mapping[str, Any]) -> None:
        """Refuses a given task count (above one) below the definition's domain before any step runs."""
        f, k = options.get("n_byzantine", 0), options.get("n_selected", 1)
        _check_tasks("krum", n_tasks, max(f + 3, k),
                     f"with n_byzantine={f} and n_selected={k} it needs at least {max(f + 3, k)} tasks "
                     "(n_byzantine + 3, and n_selected); lower n_byzantine")

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        return krum_weights(g, self.n_byzantine, self.n_selected)


@METHODS.register("trimmed_mean", aliases=("tm", "trimmedmean"))
class TrimmedMean(Aggregator):
    """Per coordinate, drops the trim_number largest and smallest values and averages the rest."""

    name = "trimmed_mean"
    claims = _ROBUST_CLAIMS
    exemptions = {
        "non_conflicting": "coordinates are trimmed independently of the tasks' inner products",
        "scale_invariant": "the update is a coordinate-wise mean of gradient entries: it scales with them",
    }
    option_rules = {"trim_number": Integer(0)}
    trim_number: int

    def __init__(self, n_tasks: int | None = None, level: str = "param", trim_number: int = 1,
                 batched: bool = True) -> None:
        super().__init__(n_tasks, level, batched, trim_number=trim_number)

    @classmethod
    def check_combination(cls, n_tasks: int | None, level: str, options: Mapping[str, Any]) -> None:
        """Refuses a given task count (above one) below the definition's domain before any step runs."""
        k = options.get("trim_number", 1)
        _check_tasks("trimmed_mean", n_tasks, 2 * k + 1,
                     f"trim_number={k} drops {2 * k} values per coordinate, so it needs at least {2 * k + 1} tasks; "
                     "lower trim_number")

    @property
    def min_rows(self) -> int:
        """Returns 2 trim_number + 1: one value per coordinate must remain."""
        return 2 * self.trim_number + 1

    def rows_reason(self) -> str:
        return (f"trim_number={self.trim_number} drops {2 * self.trim_number} values per coordinate, so it needs "
                f"at least {self.min_rows} task gradients; lower trim_number")

    def _aggregate(self, jacobian, losses):  # type: ignore[no-untyped-def]
        work = jacobian.to(compute_dtype(jacobian))
        n, k = work.shape[0], self.trim_number
        ordered, order = torch.sort(work, dim=0)  # values and positions: no second pass to find what was kept
        direction = ordered.narrow(0, k, n - 2 * k).mean(dim=0)
        return direction, _kept_shares(work, ordered, order, k)


def _kept_shares(work: torch.Tensor, ordered: torch.Tensor, order: torch.Tensor, k: int) -> torch.Tensor:
    """Returns <kept_t, g_t> / |g_t|^2 per task (kept_t: row t's entries that survive the trim, over n - 2k;
    0 for a zero row) in float64, from the sorted columns: |g_t|^2 minus the squares trimmed from row t."""
    n = work.shape[0]
    # norms in the compute dtype (a float64 cast of J costs a third of the sort), the trimmed squares in float64
    sq = torch.linalg.vector_norm(work, dim=1).to(torch.float64).square()
    trimmed = sum(torch.bincount(order[rows].reshape(-1), weights=ordered[rows].reshape(-1).to(torch.float64).square(),
                                 minlength=n) for rows in (slice(0, k), slice(n - k, n)))
    if bool(torch.isfinite(sq).all() & torch.isfinite(trimmed).all() & (sq > 0).all()):
        return ((sq - trimmed) / sq / (n - 2 * k)).cpu()
    # a float64 row whose squares over- or underflow, or a zero row: the mask, rescaled row by row
    keep = torch.ones_like(work, dtype=torch.bool)
    keep.scatter_(0, torch.cat([order[:k], order[n - k:]]), False)
    return kept_fraction(torch.where(keep, work, torch.zeros_like(work)) / (n - 2 * k), work)
