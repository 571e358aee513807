"""Separated Attribute Predictability (Kumar et al. 2018), as disentanglement_lib's `_compute_sap` computes it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn import svm
from sklearn.exceptions import ConvergenceWarning

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._utils import as_codes, as_factors, as_test_factors, factor_keys
from mtlens.measures.disentanglement.results import MetricResult, per_key


@dataclass(frozen=True, eq=False)
class SAPResult(MetricResult):
    """SAP: `score` = mean over factors of the gap between the two best single-code predictability scores."""

    score_matrix: np.ndarray  # [d, K] test accuracy (discrete) or R^2 (continuous) of code i for factor j
    per_factor: np.ndarray  # [K] gap between the top two entries of each column
    factor_names: tuple[str, ...]

    def scalars(self) -> dict[str, float]:
        return per_key("", self.factor_names, self.per_factor)


def sap(
    codes_train: object,
    factors_train: object,
    codes_test: object | None = None,
    factors_test: object | None = None,
    continuous_factors: bool = False,
    random_state: np.random.RandomState | None = None,
    factor_names: tuple[str, ...] | None = None,
) -> SAPResult:
    """Returns the SAP score of codes [N, d] for factors [N, K].

    Discrete factors (sap_score.gin: continuous_factors=False): per (code, factor) a one-feature
    `LinearSVC(C=0.01, class_weight="balanced")` fit on the train split, scored by test accuracy. Continuous
    factors: the squared correlation on the train split (a code with variance <= 1e-12 scores 0).
    `random_state=None` is the reference's: each LinearSVC fit draws its liblinear seed from numpy's global
    RNG, in the same order as the reference.
    """
    mus_rows = as_codes(codes_train, "codes_train", min_dims=2)
    ys_rows = as_factors(factors_train, mus_rows.shape[0], "factors_train")
    names = factor_keys(factor_names, ys_rows.shape[1])
    mus, ys = mus_rows.T, ys_rows.T
    num_latents, num_factors = mus.shape[0], ys.shape[0]
    if not continuous_factors:
        if codes_test is None or factors_test is None:
            raise MtlensError("sap with discrete factors needs codes_test and factors_test (it scores on a test split)")
        mus_test = as_codes(codes_test, "codes_test").T
        ys_test = as_test_factors(factors_test, mus_test.shape[1]).T
        if mus_test.shape[0] != num_latents or ys_test.shape[0] != num_factors:
            raise MtlensError(
                f"test split has {mus_test.shape[0]} codes and {ys_test.shape[0]} factors, train has "
                f"{num_latents} and {num_factors}; pass the same encoder and factors for both"
            )
    score_matrix = np.zeros([num_latents, num_factors])
    for i in range(num_latents):
        for j in range(num_factors):
            mu_i = mus[i, :]
            y_j = ys[j, :]
            if continuous_factors:
                cov = np.cov(mu_i, y_j, ddof=1)
                var_mu = cov[0, 0]
                score_matrix[i, j] = cov[0, 1] ** 2 * 1.0 / (var_mu * cov[1, 1]) if var_mu > 1e-12 else 0.0
            else:
                classifier = svm.LinearSVC(C=0.01, class_weight="balanced", random_state=random_state)
                with warnings.catch_warnings():
                    # The reference fits with liblinear's default iteration cap; its warning is expected noise.
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    classifier.fit(mu_i[:, np.newaxis], y_j)
                pred = classifier.predict(mus_test[i, :][:, np.newaxis])
                score_matrix[i, j] = np.mean(pred == ys_test[j, :])
    sorted_matrix = np.sort(score_matrix, axis=0)
    per_factor = sorted_matrix[-1, :] - sorted_matrix[-2, :]
    return SAPResult(
        name="sap",
        score=float(np.mean(per_factor)),
        score_matrix=score_matrix,
        per_factor=per_factor,
        factor_names=names,
    )

