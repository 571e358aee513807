"""DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018), as disentanglement_lib's
`_compute_dci` computes them: one default GradientBoostingClassifier per factor, importance-based D and C.

Reproducing the reference's randomness: its classifiers are built with `random_state=None`, so every tree
draws one seed from numpy's *global* RNG, factor after factor. `random_state=None` here does the same (and
leaves the global RNG where the reference leaves it); an int or RandomState gives that stream instead. The
per-factor fits run in parallel (joblib) from the RNG state each would have started from in the sequential
loop; every fit reports the state it ended in, and a fit whose predecessor did not end where predicted is
redone sequentially, so the numbers are the sequential loop's in any sklearn version.

Engine: with `engine="auto"` and the scikit-learn version `_gbt` was checked against (bitwise, in
tests/measures/test_gbt.py), a factor with 3+ classes is fitted by `_gbt.fit_gbt`, our numba re-implementation
of the same classifier: the same importances and predictions bit for bit, 2-3x faster on 2 cores and faster
with more (the class trees of a stage are fitted in parallel). It draws the same tree seeds from the same RNG.
Two-class factors, `fast=True`, `engine="sklearn"` and any other scikit-learn version use scikit-learn itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats
from joblib import Parallel, delayed
import numba
import sklearn
from sklearn import ensemble

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._gbt import fit_gbt
from mtlens.measures.disentanglement._utils import as_codes, as_factors, as_test_factors, factor_keys
from mtlens.measures.disentanglement.results import MetricResult, per_key

# sklearn's trees draw `random_state.randint(0, RAND_R_MAX)` once per tree (sklearn/tree/_utils.pxd).
_RAND_R_MAX = 0x7FFFFFFF
# GradientBoostingClassifier() defaults: 100 stages, one tree per stage for 2 classes, one per class otherwise.
_GBT_STAGES = 100
# fast=True estimator: a shallow random forest (one tree per estimator whatever the number of classes).
_FAST_TREES = 50
_FAST_DEPTH = 8
# scikit-learn versions whose GradientBoostingClassifier `_gbt` reproduces bit for bit (tests/measures/test_gbt.py)
_GBT_VERIFIED = ("1.9",)
_ENGINES = ("auto", "sklearn")


@dataclass(frozen=True, eq=False)
class DCIResult(MetricResult):
    """DCI: `score` = disentanglement; completeness and informativeness (train/test accuracy) beside it."""

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance_matrix: np.ndarray  # [d, K]
    per_code_disentanglement: np.ndarray  # [d]
    per_factor_completeness: np.ndarray  # [K]
    per_factor_train_accuracy: np.ndarray  # [K]
    per_factor_test_accuracy: np.ndarray  # [K]
    factor_names: tuple[str, ...]

    def scalars(self) -> dict[str, float]:
        out = {
            "disentanglement": self.disentanglement,
            "completeness": self.completeness,
            "informativeness_train": self.informativeness_train,
            "informativeness_test": self.informativeness_test,
        }
        out.update(per_key("completeness", self.factor_names, self.per_factor_completeness))
        out.update(per_key("informativeness_test", self.factor_names, self.per_factor_test_accuracy))
        return out


def disentanglement_per_code(importance_matrix: np.ndarray) -> np.ndarray:
    """Returns 1 - entropy (base K) of each code's importance over the K factors."""
    return 1.0 - scipy.stats.entropy(importance_matrix.T + 1e-11, base=importance_matrix.shape[1])


def completeness_per_factor(importance_matrix: np.ndarray) -> np.ndarray:
    """Returns 1 - entropy (base d) of each factor's importance over the d codes."""
    return 1.0 - scipy.stats.entropy(importance_matrix + 1e-11, base=importance_matrix.shape[0])


def _weighted(per_item: np.ndarray, importance_matrix: np.ndarray, axis: int) -> float:
    """Returns the importance-weighted sum of `per_item` (uniform weights when all importances are 0)."""
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    weights = importance_matrix.sum(axis=axis) / importance_matrix.sum()
    return float(np.sum(per_item * weights))


def _fit_factor(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, state: tuple, fast: bool
) -> tuple[np.ndarray, float, float, tuple]:
    """Returns (|importances|, train accuracy, test accuracy, RNG state after the fit) for one factor."""
    rng = np.random.RandomState()
    rng.set_state(state)
    if fast:
        model = ensemble.RandomForestClassifier(
            n_estimators=_FAST_TREES, max_depth=_FAST_DEPTH, max_features=None, random_state=rng
        )
    else:
        model = ensemble.GradientBoostingClassifier(random_state=rng)
    model.fit(x_train, y_train)
    importance = np.abs(model.feature_importances_)
    train_acc = np.mean(model.predict(x_train) == y_train)
    test_acc = np.mean(model.predict(x_test) == y_test)
    return importance, train_acc, test_acc, rng.get_state()


def _predicted_draws(y: np.ndarray, fast: bool) -> int:
    """Returns how many tree seeds one fit draws (used only to start parallel fits; verified afterwards)."""
    if fast:
        return _FAST_TREES
    num_classes = np.unique(y).size
    return _GBT_STAGES * (1 if num_classes == 2 else num_classes)


def _same_state(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


def gbt_engine_verified() -> bool:
    """Returns whether the installed scikit-learn is one `_gbt` was checked against bit for bit."""
    return ".".join(sklearn.__version__.split(".")[:2]) in _GBT_VERIFIED


def _fit_factors_numba(x_train, y_train, x_test, y_test, rng, n_jobs) -> list[tuple]:
    """Fits factor after factor from `rng` (advanced as scikit-learn would); returns _fit_factor's tuples."""
    threads = numba.get_num_threads()
    if n_jobs not in (None, -1):
        numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        fits = []
        for j in range(y_train.shape[1]):
            state = rng.get_state()
            num_classes = np.unique(y_train[:, j]).size
            fit = None
            if num_classes >= 3:
                seeds = rng.randint(0, _RAND_R_MAX, size=_GBT_STAGES * num_classes)
                out = fit_gbt(x_train, y_train[:, j], x_test, seeds)
                if out is not None:
                    importance, train_pred, test_pred = out
                    fit = (np.abs(importance), np.mean(train_pred == y_train[:, j]),
                           np.mean(test_pred == y_test[:, j]), rng.get_state())
            if fit is None:  # two classes, or a split the fast path cannot follow: scikit-learn itself
                fit = _fit_factor(x_train, y_train[:, j], x_test, y_test[:, j], state, False)
            rng.set_state(fit[3])
            fits.append(fit)
        return fits
    finally:
        numba.set_num_threads(threads)


def dci(
    codes_train: object,
    factors_train: object,
    codes_test: object,
    factors_test: object,
    random_state: int | np.random.RandomState | None = None,
    n_jobs: int | None = -1,
    fast: bool = False,
    factor_names: tuple[str, ...] | None = None,
    engine: str = "auto",
) -> DCIResult:
    """Returns DCI of codes [N, d] for factors [N, K]: importance-based D and C, accuracy as informativeness.

    `fast=True` swaps the gradient-boosted trees for a shallow random forest (50 trees, depth 8): much
    faster, with its own, different numbers, reported as "dci_fast". `n_jobs` is the number of threads
    (-1: all). `engine="sklearn"` runs scikit-learn's classifier even where `_gbt` reproduces it.
    """
    if engine not in _ENGINES:
        raise MtlensError(f"unknown DCI engine {engine!r}; use one of {', '.join(_ENGINES)}")
    x_train = as_codes(codes_train, "codes_train", min_dims=2)
    y_train = as_factors(factors_train, x_train.shape[0], "factors_train", min_factors=2)
    x_test = as_codes(codes_test, "codes_test")
    y_test = as_test_factors(factors_test, x_test.shape[0])
    if x_test.shape[1] != x_train.shape[1] or y_test.shape[1] != y_train.shape[1]:
        raise MtlensError(
            f"test split has {x_test.shape[1]} codes and {y_test.shape[1]} factors, train has {x_train.shape[1]} "
            f"and {y_train.shape[1]}; pass the same encoder and factors for both"
        )
    names = factor_keys(factor_names, y_train.shape[1])
    if random_state is None:
        rng = np.random.mtrand._rand  # the global RNG, as the reference's GradientBoostingClassifier() uses
    elif isinstance(random_state, np.random.RandomState):
        rng = random_state
    else:
        rng = np.random.RandomState(random_state)

    num_factors = y_train.shape[1]
    if not fast and engine == "auto" and gbt_engine_verified():
        fits = _fit_factors_numba(x_train, y_train, x_test, y_test, rng, n_jobs)
    else:
        fits = _fit_factors_sklearn(x_train, y_train, x_test, y_test, rng, n_jobs, fast)
    return _result(fits, x_train.shape[1], names, fast)


def _fit_factors_sklearn(x_train, y_train, x_test, y_test, rng, n_jobs, fast) -> list[tuple]:
    """Fits the factors with scikit-learn, in parallel threads from predicted RNG states, checked after."""
    num_factors = y_train.shape[1]
    probe = np.random.RandomState()
    probe.set_state(rng.get_state())
    starts = []
    for j in range(num_factors):
        starts.append(probe.get_state())
        probe.randint(0, _RAND_R_MAX, size=_predicted_draws(y_train[:, j], fast))
    jobs = (delayed(_fit_factor)(x_train, y_train[:, j], x_test, y_test[:, j], starts[j], fast) for j in range(num_factors))
    fits = list(Parallel(n_jobs=n_jobs, prefer="threads")(jobs)) if n_jobs not in (None, 1) and num_factors > 1 else [None] * num_factors
    state = rng.get_state()
    for j in range(num_factors):
        if fits[j] is None or not _same_state(starts[j], state):
            fits[j] = _fit_factor(x_train, y_train[:, j], x_test, y_test[:, j], state, fast)
        state = fits[j][3]
    rng.set_state(state)
    return fits


def _result(fits: list[tuple], num_codes: int, names: tuple[str, ...], fast: bool) -> DCIResult:
    num_factors = len(fits)
    importance_matrix = np.zeros((num_codes, num_factors), dtype=np.float64)
    for j, (importance, _, _, _) in enumerate(fits):
        importance_matrix[:, j] = importance
    train_acc = np.array([f[1] for f in fits])
    test_acc = np.array([f[2] for f in fits])
    per_code = disentanglement_per_code(importance_matrix)
    per_factor = completeness_per_factor(importance_matrix)
    d = _weighted(per_code, importance_matrix, axis=1)
    return DCIResult(
        name="dci_fast" if fast else "dci",
        score=d,
        disentanglement=d,
        completeness=_weighted(per_factor, importance_matrix, axis=0),
        informativeness_train=float(np.mean(list(train_acc))),
        informativeness_test=float(np.mean(list(test_acc))),
        importance_matrix=importance_matrix,
        per_code_disentanglement=per_code,
        per_factor_completeness=per_factor,
        per_factor_train_accuracy=train_acc,
        per_factor_test_accuracy=test_acc,
        factor_names=names,
    )
