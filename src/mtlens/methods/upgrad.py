"""UPGrad and DualProj (Quinton & Rey 2024, "Jacobian Descent for Multi-Objective Optimization", §3 and
Proposition 1): projections onto the dual cone of the task gradients, {d : <g_t, d> >= 0 for every t}.

- UPGrad projects every task gradient g_t onto the dual cone and combines the projections with the preference
  weights p (default uniform, 1/T): d = sum_t p_t pi(g_t).
- DualProj projects the combination sum_t p_t g_t onto the dual cone (Lopez-Paz & Ranzato 2017, eq. 11, the
  GEM projection): d = pi(sum_t p_t g_t).

By Proposition 1, pi(J^T u) = J^T v with v the solution of min v^T G v subject to v >= u (G = J J^T), so both
are Gram-based: `_qp.nonneg_qp` solves it exactly (an active-set method; G may be singular). G is first
divided by its trace (the squared Frobenius norm of J), which leaves v unchanged.

Numerics and the references: TorchJD 0.18 (and LibMTL's later UPGrad, copied from it) solve the same program
with quadprog, which needs a positive definite matrix: it uses G / trace(G) + reg_eps I with reg_eps = 1e-4,
and a zero matrix when trace(G) < norm_eps = 1e-4. The regularisation solves the projection for slightly
changed gradients, so its update can conflict with a task by up to reg_eps * v_t * trace(G); the absolute
norm_eps switches to the preference weights for gradients below ~1e-2 (not scale-equivariant). Our solver
handles singular G, so the defaults are the exact projection (reg_eps = 0, norm_eps = 0); reg_eps=1e-4,
norm_eps=1e-4 reproduce TorchJD to 1e-6 (tests/methods/test_peer_aggregators.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mtlens.methods._common import GramAggregator
from mtlens.methods._qp import nonneg_qp
from mtlens.methods.options import PerTask, Real
from mtlens.methods.registry import METHODS


def dual_cone_weights(
    g: torch.Tensor, u: np.ndarray, norm_eps: float = 0.0, reg_eps: float = 0.0, where: str = "upgrad"
) -> np.ndarray:
    """Returns V [K, T]: row k the weights v >= u[k] with J^T v the projection of J^T u[k] onto the dual cone."""
    gram = g.numpy()
    trace = float(np.trace(gram))
    normed = gram / trace if trace > 0.0 and trace >= norm_eps else np.zeros_like(gram)
    q = normed + reg_eps * np.eye(gram.shape[0])
    rows = []
    for target in u:
        # v = target + x, x >= 0: min (target + x)^T Q (target + x) is min x^T Q x / 2 + x^T Q target
        x, _ = nonneg_qp(q, -(q @ target), where=where)  # always feasible: d = 0 is in the cone
        rows.append(target + x)
    return np.stack(rows)


class _DualCone(GramAggregator):
    """The shared options and the preference vector of UPGrad and DualProj."""

    claims = frozenset({
        "permutation_invariant", "non_conflicting", "scale_equivariant", "finite_on_zero", "finite_on_rank1",
        "levels_agree",
    })
    exemptions = {"scale_invariant": "the projections of the gradients scale with the gradients"}
    option_rules = {"preference": PerTask(0.0, optional=True), "norm_eps": Real(0.0), "reg_eps": Real(0.0)}
    preference: torch.Tensor | None
    norm_eps: float
    reg_eps: float

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        preference: Sequence[float] | None = None,
        norm_eps: float = 0.0,
        reg_eps: float = 0.0,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, preference=preference, norm_eps=norm_eps, reg_eps=reg_eps)

    def _preference(self, n: int) -> np.ndarray:
        return np.full(n, 1.0 / n) if self.preference is None else self.preference.numpy()


@METHODS.register("upgrad", aliases=("up_grad",))
class UPGrad(_DualCone):
    """Projects each task gradient onto the dual cone of all of them; combines the projections."""

    name = "upgrad"

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        v = dual_cone_weights(g, np.diag(self._preference(g.shape[0])), self.norm_eps, self.reg_eps,
                              where=f"upgrad (step {self.step})")
        return torch.from_numpy(v.sum(axis=0))


@METHODS.register("dualproj", aliases=("dual_proj",))
class DualProj(_DualCone):
    """Projects the preference-weighted combination of the task gradients onto their dual cone."""

    name = "dualproj"

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        v = dual_cone_weights(g, self._preference(g.shape[0])[None], self.norm_eps, self.reg_eps,
                              where=f"dualproj (step {self.step})")
        return torch.from_numpy(v[0])
