"""FactorVAE score (Kim & Mnih 2018), as disentanglement_lib's `compute_factor_vae` computes it.

The pure function takes the codes the protocol produces: codes of the variance sample, and for every
training / evaluation point the codes of a batch in which one factor was held fixed. The evaluator
(`mtlens.measures.disentanglement.evaluate`) samples them with the reference's RandomState draws.

Reference quirk kept: its `num_active_dims` is `len(active_dims)` of a boolean mask, i.e. the number of all
code dimensions; `num_active_dims` here is that value and `num_active_dims_corrected` the real count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._utils import as_codes, as_float_array
from mtlens.measures.disentanglement.results import MetricResult

# factor_vae_metric.gin of unsupervised_study_v1: prune_dims.threshold = 0.05.
PRUNE_THRESHOLD = 0.05


@dataclass(frozen=True, eq=False)
class FactorVAEResult(MetricResult):
    """FactorVAE: `score` = eval accuracy of the majority-vote classifier (fixed factor <- lowest-variance code)."""

    train_accuracy: float
    eval_accuracy: float
    num_active_dims: int  # the reference's value: the number of all code dimensions (its bug, kept)
    num_active_dims_corrected: int  # dimensions with std >= threshold
    train_votes: np.ndarray  # [K, d]: rows fixed factor, columns position of the argmin among active dims
    global_variances: np.ndarray  # [d]

    def scalars(self) -> dict[str, float]:
        return {
            "train_accuracy": self.train_accuracy,
            "eval_accuracy": self.eval_accuracy,
            "num_active_dims": self.num_active_dims,
            "num_active_dims_corrected": self.num_active_dims_corrected,
        }


def _votes(batches: np.ndarray, fixed: np.ndarray, num_factors: int, global_variances: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Returns the vote table [K, d] of (fixed factor, argmin of local / global variance over active dims)."""
    votes = np.zeros((num_factors, global_variances.shape[0]), dtype=np.int64)
    for batch, factor in zip(batches, fixed):
        # one np.var per [batch, d] block, exactly the reference's expression and memory layout
        local = np.var(batch, axis=0, ddof=1)
        votes[factor, np.argmin(local[active] / global_variances[active])] += 1
    return votes


def _check_batches(batches: object, fixed: object, d: int, num_factors: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    batches = np.asarray(batches.detach().cpu().numpy() if hasattr(batches, "detach") else batches)
    if batches.ndim != 3 or batches.shape[2] != d or batches.shape[1] < 2:
        raise MtlensError(f"{name} must be [num_points, batch_size >= 2, {d}] codes, got shape {batches.shape}")
    fixed = np.asarray(fixed).reshape(-1)
    if fixed.dtype.kind not in "iu" and not (fixed.dtype.kind == "f" and np.array_equal(fixed, np.round(fixed))):
        raise MtlensError(f"{name}: fixed-factor indices must be integers, got {fixed.dtype} values")
    fixed = fixed.astype(np.int64)
    if fixed.shape[0] != batches.shape[0] or batches.shape[0] == 0:
        raise MtlensError(f"{name}: need one fixed-factor index per batch, got {fixed.shape[0]} for {batches.shape[0]}")
    if fixed.min() < 0 or fixed.max() >= num_factors:
        raise MtlensError(f"{name}: fixed-factor indices must be in 0..{num_factors - 1}")
    return as_float_array(batches, name), fixed


def factor_vae_score(
    variance_codes: object,
    train_batches: object,
    train_fixed: object,
    eval_batches: object,
    eval_fixed: object,
    num_factors: int,
    threshold: float = PRUNE_THRESHOLD,
) -> FactorVAEResult:
    """Returns the FactorVAE score from codes of the variance sample [M, d] and fixed-factor batches [T, B, d].

    Dimensions whose global std is below `threshold` (or zero) are pruned; each batch votes for (its fixed factor, the
    active dimension with the smallest variance ratio); the classifier maps a dimension to its majority factor.
    """
    if isinstance(num_factors, bool) or not isinstance(num_factors, (int, np.integer)) or num_factors < 1:
        raise MtlensError(f"num_factors must be a positive integer, got {num_factors!r}")
    if not np.isfinite(threshold) or threshold < 0:
        raise MtlensError(f"threshold must be a finite number >= 0, got {threshold!r}")
    codes = as_codes(variance_codes, "variance_codes")
    d = codes.shape[1]
    train_batches, train_fixed = _check_batches(train_batches, train_fixed, d, num_factors, "train_batches")
    eval_batches, eval_fixed = _check_batches(eval_batches, eval_fixed, d, num_factors, "eval_batches")
    global_variances = np.var(codes, axis=0, ddof=1)
    # A dimension with zero variance is never active, even at threshold 0 (the reference would divide 0 / 0
    # there and vote for it whatever the batches hold).
    active = (np.sqrt(global_variances) >= threshold) & (global_variances > 0)
    if not active.any():
        return FactorVAEResult(
            name="factor_vae", score=0.0, train_accuracy=0.0, eval_accuracy=0.0, num_active_dims=0,
            num_active_dims_corrected=0, train_votes=np.zeros((num_factors, d), np.int64),
            global_variances=global_variances,
        )
    train_votes = _votes(train_batches, train_fixed, num_factors, global_variances, active)
    classifier = np.argmax(train_votes, axis=0)
    other_index = np.arange(train_votes.shape[1])
    train_accuracy = np.sum(train_votes[classifier, other_index]) * 1.0 / np.sum(train_votes)
    eval_votes = _votes(eval_batches, eval_fixed, num_factors, global_variances, active)
    eval_accuracy = np.sum(eval_votes[classifier, other_index]) * 1.0 / np.sum(eval_votes)
    return FactorVAEResult(
        name="factor_vae",
        score=float(eval_accuracy),
        train_accuracy=float(train_accuracy),
        eval_accuracy=float(eval_accuracy),
        num_active_dims=int(len(active)),
        num_active_dims_corrected=int(active.sum()),
        train_votes=train_votes,
        global_variances=global_variances,
    )
