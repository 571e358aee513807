"""Unsupervised scores of a representation, as disentanglement_lib's `unsupervised_metrics` computes them:
Gaussian total correlation, Gaussian Wasserstein dependency (and its trace-normalised form), and the mean
pairwise mutual information between histogram-discretised code dimensions."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._utils import as_codes, check_num_bins, discrete_mutual_info, histogram_discretize
from mtlens.measures.disentanglement.results import MetricResult


# Smallest eigenvalue of the codes' correlation matrix below which it counts as singular: about 1e4 float64
# round-offs (a correlation of 0.999999 between two codes gives 1e-6, exact dependence ~1e-16).
_SINGULAR_TOLERANCE = 1e-12


@dataclass(frozen=True, eq=False)
class UnsupervisedResult(MetricResult):
    """`score` = Gaussian total correlation (nats); the other scores beside it. Lower means more factorised."""

    gaussian_total_correlation: float
    gaussian_wasserstein_correlation: float
    gaussian_wasserstein_correlation_norm: float
    mutual_info_score: float
    covariance: np.ndarray  # [d, d]
    mutual_info: np.ndarray  # [d, d] pairwise MI, zero diagonal

    def scalars(self) -> dict[str, float]:
        return {
            "gaussian_total_correlation": self.gaussian_total_correlation,
            "gaussian_wasserstein_correlation": self.gaussian_wasserstein_correlation,
            "gaussian_wasserstein_correlation_norm": self.gaussian_wasserstein_correlation_norm,
            "mutual_info_score": self.mutual_info_score,
        }


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """Returns KL(N(0, cov) || N(0, diag(cov))) in nats."""
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1]))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Returns the reference's squared 2-Wasserstein distance between N(0, cov) and N(0, diag(cov))."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # a nearly singular matrix: checked below
        sqrtm = scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1))
    trace = np.trace(sqrtm)
    if np.iscomplexobj(trace):
        # round-off can give a real matrix a complex root with a negligible imaginary part; more is an error
        if not abs(trace.imag) <= 1e-8 * max(abs(trace.real), 1e-300):
            raise MtlensError(
                "the matrix square root of the codes' covariance is complex; the Wasserstein score is undefined "
                "for these codes (nearly dependent dimensions)"
            )
        trace = trace.real
    return float(2 * np.trace(cov) - 2 * trace)


def unsupervised(codes: object, num_bins: int = 20) -> UnsupervisedResult:
    """Returns the unsupervised scores of codes [N, d] (no factors needed); needs d >= 2 varying codes."""
    codes = as_codes(codes, min_dims=2)
    num_bins = check_num_bins(num_bins, codes.shape[0])
    mus = codes.T
    num_codes = mus.shape[0]
    cov = np.cov(mus)
    if np.any(np.diag(cov) <= 0):
        raise MtlensError(
            f"code dimension {int(np.argmin(np.diag(cov)))} is constant; the Gaussian scores need varying codes "
            "(drop constant dimensions)"
        )
    # Dependent dimensions make the total correlation infinite; round-off turns that into a large finite number
    # (the reference's), so the smallest eigenvalue of the correlation matrix is compared with round-off.
    std = np.sqrt(np.diag(cov))
    smallest = np.linalg.eigvalsh(cov / std[:, None] / std[None, :]).min()
    if not smallest > _SINGULAR_TOLERANCE:
        raise MtlensError(
            "the codes' covariance is singular (some dimensions are linear combinations of others), so the Gaussian "
            "total correlation is infinite; drop the dependent dimensions"
        )
    tc = gaussian_total_correlation(cov)
    wasserstein = gaussian_wasserstein_correlation(cov)
    discretized = histogram_discretize(codes, num_bins)
    mi = discrete_mutual_info(discretized, discretized)
    np.fill_diagonal(mi, 0)
    return UnsupervisedResult(
        name="unsupervised",
        score=tc,
        gaussian_total_correlation=tc,
        gaussian_wasserstein_correlation=wasserstein,
        gaussian_wasserstein_correlation_norm=float(wasserstein / np.sum(np.diag(cov))),
        mutual_info_score=float(np.sum(mi) / (num_codes**2 - num_codes)),
        covariance=cov,
        mutual_info=mi,
    )
