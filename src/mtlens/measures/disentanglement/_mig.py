"""Mutual Information Gap (Chen et al. 2018), as disentanglement_lib's `_compute_mig` computes it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtlens.measures.disentanglement._utils import (
    as_codes,
    as_factors,
    check_num_bins,
    discrete_entropy,
    discrete_mutual_info,
    factor_keys,
    histogram_discretize,
)
from mtlens.measures.disentanglement.results import MetricResult, per_key


@dataclass(frozen=True, eq=False)
class MIGResult(MetricResult):
    """MIG: `score` = mean over factors of (top MI - second MI) / H(factor); MI in nats."""

    per_factor: np.ndarray  # [K] normalised gap of each factor
    mutual_info: np.ndarray  # [d, K] MI between each discretised code and each factor
    entropy: np.ndarray  # [K] factor entropies
    factor_names: tuple[str, ...]

    def scalars(self) -> dict[str, float]:
        return per_key("", self.factor_names, self.per_factor)


def mig(
    codes: object, factors: object, num_bins: int = 20, factor_names: tuple[str, ...] | None = None
) -> MIGResult:
    """Returns the MIG of `codes` [N, d] w.r.t. integer `factors` [N, K] (codes binned into `num_bins`).

    num_bins=20 and the histogram discretiser are the unsupervised_study_v1 mig.gin settings.
    """
    codes = as_codes(codes, min_dims=2)
    factors = as_factors(factors, codes.shape[0])
    num_bins = check_num_bins(num_bins, codes.shape[0])
    names = factor_keys(factor_names, factors.shape[1])
    discretized = histogram_discretize(codes, num_bins)
    m = discrete_mutual_info(discretized, factors)
    entropy = discrete_entropy(factors)
    sorted_m = np.sort(m, axis=0)[::-1]
    per_factor = np.divide(sorted_m[0, :] - sorted_m[1, :], entropy[:])
    return MIGResult(
        name="mig",
        score=float(np.mean(per_factor)),
        per_factor=per_factor,
        mutual_info=m,
        entropy=entropy,
        factor_names=names,
    )
