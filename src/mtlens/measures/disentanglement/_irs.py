"""Interventional Robustness Score (Suter et al. 2019), as disentanglement_lib's `compute_irs` computes it.

Reference quirks kept in the reference numbers (documented, with corrected values beside them):
- the factors are discretised with the same 20-bin histogram as codes, so a factor with more than 20 values
  (dSprites' orientation, positions) is merged into 20 groups before E[z | g] is computed;
- its `num_active_dims` is `np.sum(active_codes)` - the sum of the active codes' values, not their count.
  `num_active_dims` here is that value; `num_active_dims_corrected` is the count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._utils import as_codes, as_factors, check_num_bins, histogram_discretize
from mtlens.measures.disentanglement.results import MetricResult


@dataclass(frozen=True, eq=False)
class IRSResult(MetricResult):
    """IRS: `score` = max-deviation-weighted mean over active codes of their best 1 - normalised deviation."""

    num_active_dims: float  # the reference's value: the sum of the active codes (its bug, kept)
    num_active_dims_corrected: int  # the number of non-constant code dimensions
    per_code: np.ndarray  # [d_active] disentanglement score of each active code
    irs_matrix: np.ndarray  # [d_active, K]
    parents: np.ndarray  # [d_active] factor each active code depends on most

    def scalars(self) -> dict[str, float]:
        return {"num_active_dims": self.num_active_dims, "num_active_dims_corrected": self.num_active_dims_corrected}


def _scalable_score(gen_factors: np.ndarray, latents: np.ndarray, diff_quantile: float) -> dict[str, np.ndarray]:
    """Returns the IRS parts of [N, K] discrete factors and [N, d] latents (the reference's algorithm)."""
    num_gen, num_lat = gen_factors.shape[1], latents.shape[1]
    max_deviations = np.max(np.abs(latents - latents.mean(axis=0)), axis=0)
    cum_deviations = np.zeros([num_lat, num_gen])
    for i in range(num_gen):
        unique_factors = np.unique(gen_factors[:, i], axis=0)
        for value in unique_factors:
            match = gen_factors[:, i] == value
            e_loc = np.mean(latents[match, :], axis=0)
            diffs = np.abs(latents[match, :] - e_loc)
            cum_deviations[:, i] += np.percentile(diffs, q=diff_quantile * 100, axis=0)
        cum_deviations[:, i] /= unique_factors.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        irs_matrix = 1.0 - cum_deviations / max_deviations[:, np.newaxis]
    per_code = irs_matrix.max(axis=1)
    if np.sum(max_deviations) > 0.0:
        avg = np.average(per_code, weights=max_deviations)
    else:
        avg = np.mean(per_code)
    return {"avg": avg, "per_code": per_code, "matrix": irs_matrix, "parents": irs_matrix.argmax(axis=1)}


def irs(codes: object, factors: object, diff_quantile: float = 0.99, num_bins: int = 20) -> IRSResult:
    """Returns the IRS of codes [N, d] for factors [N, K]; diff_quantile=0.99 is the reference's default.

    Constant code dimensions are dropped (score 0 when all are), including ones whose float variance rounds
    above 0 (where the reference returns NaN); factors are histogram-discretised into `num_bins` groups as in
    the reference.
    """
    codes = as_codes(codes)
    factors = as_factors(factors, codes.shape[0])
    num_bins = check_num_bins(num_bins, codes.shape[0])
    if not 0.0 <= diff_quantile <= 1.0:
        raise MtlensError(f"diff_quantile must be in [0, 1], got {diff_quantile}")
    mus, ys = codes.T, factors.T
    ys_discrete = histogram_discretize(factors, num_bins).T
    # A constant code is inactive even when its float variance rounds above 0 (e.g. 0.05 repeated in float32):
    # its largest deviation from the mean is then 0, and the reference divides by it (NaN).
    active_mus = mus[(mus.var(axis=1) > 0.0) & (np.ptp(mus, axis=1) > 0), :]
    if not active_mus.any():
        parts = {"avg": 0.0, "per_code": np.zeros(0), "matrix": np.zeros((0, ys.shape[0])), "parents": np.zeros(0, int)}
    else:
        parts = _scalable_score(ys_discrete.T, active_mus.T, diff_quantile)
    return IRSResult(
        name="irs",
        score=float(parts["avg"]),
        num_active_dims=float(np.sum(active_mus)),
        num_active_dims_corrected=int(active_mus.shape[0]),
        per_code=parts["per_code"],
        irs_matrix=parts["matrix"],
        parents=parts["parents"],
    )
