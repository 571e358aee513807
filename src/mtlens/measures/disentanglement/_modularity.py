"""Modularity and explicitness (Ridgeway & Mozer 2018), as disentanglement_lib's
`compute_modularity_explicitness` computes them from a train and a test split."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn import linear_model, metrics, preprocessing
from sklearn.exceptions import ConvergenceWarning

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._utils import (
    as_codes,
    as_factors,
    as_test_factors,
    check_num_bins,
    discrete_mutual_info,
    factor_keys,
    histogram_discretize,
)
from mtlens.measures.disentanglement.results import MetricResult, per_key


@dataclass(frozen=True, eq=False)
class ModularityResult(MetricResult):
    """`score` = modularity (mean over codes); explicitness = mean one-vs-rest ROC-AUC of a logistic regression."""

    modularity: float
    explicitness_train: float
    explicitness_test: float
    per_code_modularity: np.ndarray  # [d]
    mutual_info: np.ndarray  # [d, K]
    per_factor_explicitness_train: np.ndarray  # [K]
    per_factor_explicitness_test: np.ndarray  # [K]
    factor_names: tuple[str, ...]

    def scalars(self) -> dict[str, float]:
        out = {
            "modularity": self.modularity,
            "explicitness_train": self.explicitness_train,
            "explicitness_test": self.explicitness_test,
        }
        out.update(per_key("explicitness_test", self.factor_names, self.per_factor_explicitness_test))
        return out


def modularity_from_mi(mutual_information: np.ndarray) -> np.ndarray:
    """Returns each code's modularity from the MI matrix [d, K] (0 for a code with no information)."""
    squared_mi = np.square(mutual_information)
    max_squared_mi = np.max(squared_mi, axis=1)
    numerator = np.sum(squared_mi, axis=1) - max_squared_mi
    denominator = max_squared_mi * (squared_mi.shape[1] - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - numerator / denominator
    score[max_squared_mi == 0.0] = 0.0
    return score


def _explicitness(mus_train: np.ndarray, y_train: np.ndarray, mus_test: np.ndarray, y_test: np.ndarray) -> tuple[float, float]:
    """Returns (train, test) ROC-AUC of a logistic regression predicting one factor from all codes."""
    x_train = np.transpose(mus_train)
    x_test = np.transpose(mus_test)
    with warnings.catch_warnings():
        # The reference fits with lbfgs' default 100 iterations; the convergence warning does not change numbers.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = linear_model.LogisticRegression().fit(x_train, y_train)
    binarizer = preprocessing.MultiLabelBinarizer()
    true_train = binarizer.fit_transform(np.expand_dims(y_train, 1))
    true_test = binarizer.fit_transform(np.expand_dims(y_test, 1))
    proba_test = clf.predict_proba(x_test)
    if true_test.shape[1] != proba_test.shape[1]:
        raise MtlensError(
            f"the test split holds {true_test.shape[1]} of a factor's {proba_test.shape[1]} values; explicitness "
            "needs every value of every factor in the test split (use more test points)"
        )
    roc_train = metrics.roc_auc_score(true_train, clf.predict_proba(x_train))
    roc_test = metrics.roc_auc_score(true_test, proba_test)
    return float(roc_train), float(roc_test)


def modularity_explicitness(
    codes_train: object,
    factors_train: object,
    codes_test: object,
    factors_test: object,
    num_bins: int = 20,
    factor_names: tuple[str, ...] | None = None,
) -> ModularityResult:
    """Returns modularity (from binned-code MI on the train split) and explicitness (train / test ROC-AUC)."""
    codes = as_codes(codes_train, "codes_train")
    factors = as_factors(factors_train, codes.shape[0], "factors_train", min_factors=2)
    test_codes = as_codes(codes_test, "codes_test")
    test_factors = as_test_factors(factors_test, test_codes.shape[0])
    if test_codes.shape[1] != codes.shape[1] or test_factors.shape[1] != factors.shape[1]:
        raise MtlensError("codes_test / factors_test must have as many columns as codes_train / factors_train")
    num_bins = check_num_bins(num_bins, codes.shape[0])
    names = factor_keys(factor_names, factors.shape[1])
    mutual_information = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)
    per_code = modularity_from_mi(mutual_information)

    # The reference's normalize_data on [d, N] views: train mean / std, applied to both splits.
    mus_train, mus_test = codes.T, test_codes.T
    mean = np.mean(mus_train, axis=1)
    stddev = np.std(mus_train, axis=1)
    if np.any(stddev == 0):
        raise MtlensError(
            f"code dimension {int(np.argmax(stddev == 0))} is constant on the train split; explicitness "
            "standardises codes, drop constant dimensions first"
        )
    mus_train_norm = (mus_train - mean[:, np.newaxis]) / stddev[:, np.newaxis]
    mus_test_norm = (mus_test - mean[:, np.newaxis]) / stddev[:, np.newaxis]
    ys_train, ys_test = factors.T, test_factors.T
    train = np.zeros([ys_train.shape[0], 1])
    test = np.zeros([ys_test.shape[0], 1])
    for i in range(ys_train.shape[0]):
        train[i], test[i] = _explicitness(mus_train_norm, ys_train[i, :], mus_test_norm, ys_test[i, :])
    modularity = float(np.mean(per_code))
    return ModularityResult(
        name="modularity_explicitness",
        score=modularity,
        modularity=modularity,
        explicitness_train=float(np.mean(train)),
        explicitness_test=float(np.mean(test)),
        per_code_modularity=per_code,
        mutual_info=mutual_information,
        per_factor_explicitness_train=train[:, 0],
        per_factor_explicitness_test=test[:, 0],
        factor_names=names,
    )
