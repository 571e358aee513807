"""Aligned-MTL (Senushkin et al. 2023, "Independent Component Alignment for Multi-Task Learning", Alg. 1).

The gradient matrix is replaced by its closest matrix with orthogonal rows of equal norm (stability number 1):
with the Gram matrix G = V diag(lambda) V^T, B = sqrt(lambda_min) V diag(lambda)^(-1/2) V^T and the aligned
gradients are the rows of B J (orthogonal, each of norm sigma_min = sqrt(lambda_min), the smallest singular
value of J). The update is their sum, i.e. weights B 1, as in the authors' code (`grads.sum(-1)`) and
LibMTL's later versions; TorchJD 0.18 takes their mean (weights B 1 / T). Eigenvalues below
lambda_max * T * eps are dropped, as in the authors' code (rank-deficient gradients are aligned within their
span); when every gradient is zero the update is zero. `scale_mode` picks the scale: "min" (the paper's
sigma_min), "median" or "rmse" (mean eigenvalue), the authors' options. level="feature" is Aligned-MTL-UB.
"""

from __future__ import annotations

import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import GramAggregator
from mtlens.methods.options import Choice
from mtlens.methods.registry import METHODS

SCALE_MODES = ("min", "median", "rmse")


def balance_matrix(g: torch.Tensor, scale_mode: str = "min", where: str = "aligned_mtl") -> torch.Tensor:
    """Returns B [T, T] such that the rows of B J are orthogonal with equal norms (float64)."""
    try:
        lam, vecs = torch.linalg.eigh(g)
    except torch.linalg.LinAlgError as err:
        raise MtlensError(
            f"{where}: the eigendecomposition of the Gram matrix failed ({err}); check the task gradients"
        ) from err
    tol = float(lam.max()) * g.shape[0] * torch.finfo(g.dtype).eps
    keep = lam > tol
    if not bool(keep.any()):
        return torch.zeros_like(g)
    lam, vecs = lam[keep], vecs[:, keep]
    scale = {"min": lam.min(), "median": lam.median(), "rmse": lam.mean()}[scale_mode]
    return scale.sqrt() * (vecs / lam.sqrt()) @ vecs.T


@METHODS.register("aligned_mtl", aliases=("aligned", "alignedmtl", "aligned-mtl"))
class AlignedMTL(GramAggregator):
    """Sums the task gradients after aligning them to orthogonal directions of equal norm."""

    name = "aligned_mtl"
    claims = frozenset({
        "permutation_invariant", "scale_equivariant", "finite_on_zero", "finite_on_rank1", "levels_agree"
    })
    exemptions = {
        "non_conflicting": (
            "the aligned gradients are orthogonal, not aligned with every task (Senushkin et al. 2023 prove "
            "convergence, not non-conflict)"
        ),
        "scale_invariant": "the aligned gradients have norm sigma_min(J), which scales with the gradients",
    }
    option_rules = {"scale_mode": Choice(SCALE_MODES)}
    scale_mode: str

    def __init__(
        self, n_tasks: int | None = None, level: str = "param", scale_mode: str = "min", batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, scale_mode=scale_mode)

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        # B is unchanged when G is scaled
        return balance_matrix(g, self.scale_mode, where=f"aligned_mtl (step {self.step})").sum(dim=1)
