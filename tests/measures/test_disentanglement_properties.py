"""Property-based tests (Hypothesis) over every disentanglement metric: hostile inputs give a finite result or
the package's one-line error, never a hang, a raw exception or a silent NaN / inf.

Inputs drawn: 2..N points, 1..5 code dimensions, 1..3 factors of 1..5 values (a single-valued factor is
drawn on purpose); code dtypes float16/32/64, int8/32/64, uint8 and bool; scales 10**k for k in -30..30;
structures random, one constant column, all constant, duplicated column, linear combination (rank-deficient),
integer grid and "few ulps" (values a few units in the last place apart); and with probability ~1/6 a NaN, +inf or -inf planted at a random cell. Each metric is also
called with its own settings drawn (num_bins 1..25, diff_quantile slightly outside [0, 1], SAP's continuous
mode, FactorVAE's threshold, ...).

The contract checked for every call (`check`): either MtlensError with a one-line message, or a result
whose `score` is a Python float, whose `as_dict()` values are all finite, and whose arrays have the
documented shapes. A test running past conftest's `HANG_SECONDS` is a hang: a watchdog (faulthandler, which
also catches loops inside native code) prints the tracebacks and ends the run; it is not a timing assertion.

Settings (Hypothesis profiles, chosen per test with `settings(...)` below):
- default: `derandomize=True` (the same examples every run, so a failure reproduces), `deadline=None` (no
  per-example timing), `max_examples` per metric in `EXAMPLES` (40-100; DCI 10 with at most 12 points,
  2 factors and `n_jobs=1`, its boosted trees being the slow part), under ~25 s for the file on 2 cores.
- slow (`pytest -m slow`): `SLOW_FACTOR` times the examples, random (not derandomized) draws, up to 40 points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mtlens.errors import MtlensError
from mtlens.measures import disentanglement as D

pytestmark = pytest.mark.usefixtures("hang_guard")  # tests/measures/conftest.py: a hang ends the run
EXAMPLES = {"mig": 100, "sap": 40, "dci": 10, "modularity": 40, "irs": 100, "unsupervised": 100, "factor_vae": 100,
            "beta_vae": 40}
SLOW_FACTOR = 10
DTYPES = ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool")
SCALE_EXPONENTS = (-30, 30)  # codes are scaled by 10**k, k drawn in this range
STRUCTURES = ("random", "constant column", "all constant", "duplicate column", "linear combination", "integer grid",
              "few ulps")


def profile(metric: str, *, slow: bool) -> settings:
    """Returns the Hypothesis settings of one metric's test (default or slow profile)."""
    return settings(
        max_examples=EXAMPLES[metric] * (SLOW_FACTOR if slow else 1),
        deadline=None,
        derandomize=not slow,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def check(call: Callable[[], D.MetricResult], shapes: Callable[[D.MetricResult], dict] | None = None) -> D.MetricResult | None:
    """Runs `call` under the contract: one-line MtlensError, or a finite result of the right shapes."""
    try:
        result = call()
    except MtlensError as err:
        assert "\n" not in str(err) and str(err), f"not a one-line error: {err!r}"
        event(f"error: {' '.join(str(err).split()[:4])}")
        return None
    event("result")
    assert isinstance(result.score, float), type(result.score)
    values = result.as_dict()
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    assert not bad, f"non-finite values: {bad}"
    for field, expected in (shapes(result) if shapes else {}).items():
        assert getattr(result, field).shape == expected, (field, getattr(result, field).shape, expected)
    return result


# ------------------------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Codes:
    dtype: str
    scale: float
    structure: str
    special: str | None  # "nan", "inf", "-inf" or None
    seed: int


@st.composite
def code_specs(draw: st.DrawFn) -> Codes:
    special = draw(st.sampled_from([None] * 15 + ["nan", "inf", "-inf"]))
    scale = 10.0 ** draw(st.integers(*SCALE_EXPONENTS))
    return Codes(draw(st.sampled_from(DTYPES)), scale, draw(st.sampled_from(STRUCTURES)), special,
                 draw(st.integers(0, 2**31 - 1)))


def make_codes(spec: Codes, n: int, d: int) -> np.ndarray:
    """Returns codes [n, d] of the drawn dtype, scale, structure and planted special value."""
    rs = np.random.RandomState(spec.seed)
    x = rs.randn(n, d)
    if spec.structure == "constant column":
        x[:, rs.randint(d)] = 0.5
    elif spec.structure == "all constant":
        x[:] = 0.25
    elif spec.structure == "duplicate column" and d > 1:
        x[:, -1] = x[:, 0]
    elif spec.structure == "linear combination" and d > 2:
        x[:, -1] = 2.0 * x[:, 0] - 0.5 * x[:, 1]
    elif spec.structure == "integer grid":
        x = rs.randint(-2, 3, size=(n, d)).astype(float)
    if spec.dtype in ("int8", "int32", "int64", "uint8", "bool"):
        info = np.iinfo(spec.dtype) if spec.dtype != "bool" else None
        x = np.round(x * 3)
        x = x > 0 if info is None else np.clip(x - (info.min if info.min == 0 else 0), info.min, info.max)
        return x.astype(spec.dtype)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if spec.structure == "few ulps":  # values a few units in the last place apart: a range too narrow to bin
            one = np.asarray(spec.scale, dtype=spec.dtype)
            x = one + rs.randint(0, 4, size=(n, d)).astype(spec.dtype) * np.spacing(one)
        else:
            x = (x * spec.scale).astype(spec.dtype)
    if spec.special is not None:
        x = x.astype(spec.dtype)
        x[rs.randint(n), rs.randint(d)] = float(spec.special)
    return x


def make_factors(rs: np.random.RandomState, n: int, sizes: list[int]) -> np.ndarray:
    """Returns factors [n, K]: each column cycles through its values (all present when n allows), shuffled."""
    return np.stack([rs.permutation(np.arange(n) % size) for size in sizes], axis=1)


# Weighted towards inputs a metric accepts (2+ codes, several points, varying factors, fewer bins than points),
# with the edge cases (1 code, 2 points, a single-valued factor, 1 or 25 bins) still drawn.
# (Hypothesis draws the first entries of sampled_from more often and shrinks towards them.)
points = st.sampled_from([24, 16, 12, 8, 3, 2])
dims = st.sampled_from([3, 2, 4, 5, 1])
factor_sizes = st.lists(st.sampled_from([3, 2, 4, 5, 1]), min_size=1, max_size=3)
bins = st.sampled_from([5, 10, 2, 3, 20, 1, 25])


def _run_mig(spec: Codes, n: int, d: int, sizes: list[int], num_bins: int) -> None:
    codes, factors = make_codes(spec, n, d), make_factors(np.random.RandomState(spec.seed), n, sizes)
    check(lambda: D.mig(codes, factors, num_bins=num_bins),
          lambda r: {"per_factor": (len(sizes),), "mutual_info": (d, len(sizes)), "entropy": (len(sizes),)})


def _run_sap(spec: Codes, n: int, d: int, sizes: list[int], continuous: bool) -> None:
    rs = np.random.RandomState(spec.seed)
    codes, factors = make_codes(spec, n, d), make_factors(rs, n, sizes)
    test_codes, test_factors = make_codes(spec, n, d)[::-1].copy(), make_factors(rs, n, sizes)
    check(lambda: D.sap(codes, factors, test_codes, test_factors, continuous_factors=continuous),
          lambda r: {"score_matrix": (d, len(sizes)), "per_factor": (len(sizes),)})


def _run_dci(spec: Codes, n: int, d: int, sizes: list[int]) -> None:
    rs = np.random.RandomState(spec.seed)
    codes, factors = make_codes(spec, n, d), make_factors(rs, n, sizes)
    check(lambda: D.dci(codes, factors, codes, make_factors(rs, n, sizes), random_state=spec.seed, n_jobs=1),
          lambda r: {"importance_matrix": (d, len(sizes)), "per_code_disentanglement": (d,),
                     "per_factor_completeness": (len(sizes),)})


def _run_modularity(spec: Codes, n: int, d: int, sizes: list[int], num_bins: int) -> None:
    rs = np.random.RandomState(spec.seed)
    codes, factors = make_codes(spec, n, d), make_factors(rs, n, sizes)
    check(lambda: D.modularity_explicitness(codes, factors, codes, make_factors(rs, n, sizes), num_bins=num_bins),
          lambda r: {"per_code_modularity": (d,), "mutual_info": (d, len(sizes)),
                     "per_factor_explicitness_test": (len(sizes),)})


def _run_irs(spec: Codes, n: int, d: int, sizes: list[int], num_bins: int, quantile: float) -> None:
    codes, factors = make_codes(spec, n, d), make_factors(np.random.RandomState(spec.seed), n, sizes)
    result = check(lambda: D.irs(codes, factors, diff_quantile=quantile, num_bins=num_bins))
    if result is not None:
        active = result.num_active_dims_corrected
        assert result.per_code.shape == (active,) and result.irs_matrix.shape == (active, len(sizes))


def _run_unsupervised(spec: Codes, n: int, d: int, num_bins: int) -> None:
    codes = make_codes(spec, n, d)
    check(lambda: D.unsupervised(codes, num_bins=num_bins), lambda r: {"covariance": (d, d), "mutual_info": (d, d)})


def _run_factor_vae(spec: Codes, d: int, batches: int, batch: int, num_factors: int, threshold: float) -> None:
    rs = np.random.RandomState(spec.seed)
    variance = make_codes(spec, max(2, batches * batch), d)
    train = make_codes(spec, batches * batch, d).reshape(batches, batch, d)
    evals = make_codes(Codes(spec.dtype, spec.scale, spec.structure, None, spec.seed + 1), batches * batch, d)
    fixed = rs.randint(num_factors, size=batches)
    check(lambda: D.factor_vae_score(variance, train, fixed, evals.reshape(batches, batch, d), fixed[::-1].copy(),
                                     num_factors=num_factors, threshold=threshold),
          lambda r: {"train_votes": (num_factors, d), "global_variances": (d,)})


def _run_beta_vae(spec: Codes, d: int, pairs: int, batch: int, num_factors: int) -> None:
    rs = np.random.RandomState(spec.seed)
    first = make_codes(spec, pairs * batch, d).reshape(pairs, batch, d)
    second = make_codes(Codes(spec.dtype, spec.scale, spec.structure, None, spec.seed + 1), pairs * batch, d)
    labels = rs.randint(num_factors, size=pairs)

    def call() -> D.MetricResult:
        features = D.pair_features(first, second.reshape(pairs, batch, d))
        return D.beta_vae_score(features, labels, features[::-1].copy(), labels[::-1].copy())

    check(call)


# ------------------------------------------------------------------------------------------------ tests
# Each metric has a default test and a `slow` one (more examples, random draws, more points).
points_slow = st.integers(2, 40)
dci_points, dci_points_slow = st.sampled_from([12, 9, 6, 2]), st.integers(2, 20)
dci_dims, dci_sizes = st.sampled_from([3, 2, 1]), st.lists(st.sampled_from([3, 2, 1]), min_size=2, max_size=2)
quantiles = st.sampled_from([0.5, 0.99, 0.0, 1.0, -0.1, 1.5])
fvae_args = (dims, st.integers(1, 6), st.sampled_from([4, 2, 5, 1]), st.integers(1, 4), st.sampled_from([0.05, 0.0, 1.0, 1e6]))
bvae_args = (dims, st.sampled_from([8, 4, 1]), st.sampled_from([4, 2, 1]), st.sampled_from([3, 2, 1]))
two_factor_sizes = st.lists(st.sampled_from([3, 2, 4, 5, 1]), min_size=2, max_size=3)  # DCI, modularity need 2+


@profile("mig", slow=False)
@given(code_specs(), points, dims, factor_sizes, bins)
def test_mig_contract(spec, n, d, sizes, num_bins) -> None:
    _run_mig(spec, n, d, sizes, num_bins)


@profile("sap", slow=False)
@given(code_specs(), points, dims, factor_sizes, st.booleans())
def test_sap_contract(spec, n, d, sizes, continuous) -> None:
    _run_sap(spec, n, d, sizes, continuous)


@profile("dci", slow=False)
@given(code_specs(), dci_points, dci_dims, dci_sizes)
def test_dci_contract(spec, n, d, sizes) -> None:
    _run_dci(spec, n, d, sizes)


@profile("modularity", slow=False)
@given(code_specs(), points, dims, two_factor_sizes, bins)
def test_modularity_explicitness_contract(spec, n, d, sizes, num_bins) -> None:
    _run_modularity(spec, n, d, sizes, num_bins)


@profile("irs", slow=False)
@given(code_specs(), points, dims, factor_sizes, bins, quantiles)
def test_irs_contract(spec, n, d, sizes, num_bins, quantile) -> None:
    _run_irs(spec, n, d, sizes, num_bins, quantile)


@profile("unsupervised", slow=False)
@given(code_specs(), points, dims, bins)
def test_unsupervised_contract(spec, n, d, num_bins) -> None:
    _run_unsupervised(spec, n, d, num_bins)


@profile("factor_vae", slow=False)
@given(code_specs(), *fvae_args)
def test_factor_vae_contract(spec, d, batches, batch, num_factors, threshold) -> None:
    _run_factor_vae(spec, d, batches, batch, num_factors, threshold)


@profile("beta_vae", slow=False)
@given(code_specs(), *bvae_args)
def test_beta_vae_contract(spec, d, pairs, batch, num_factors) -> None:
    _run_beta_vae(spec, d, pairs, batch, num_factors)


@pytest.mark.slow
@profile("mig", slow=True)
@given(code_specs(), points_slow, dims, factor_sizes, bins)
def test_mig_contract_long(spec, n, d, sizes, num_bins) -> None:
    _run_mig(spec, n, d, sizes, num_bins)


@pytest.mark.slow
@profile("sap", slow=True)
@given(code_specs(), points_slow, dims, factor_sizes, st.booleans())
def test_sap_contract_long(spec, n, d, sizes, continuous) -> None:
    _run_sap(spec, n, d, sizes, continuous)


@pytest.mark.slow
@profile("dci", slow=True)
@given(code_specs(), dci_points_slow, dci_dims, dci_sizes)
def test_dci_contract_long(spec, n, d, sizes) -> None:
    _run_dci(spec, n, d, sizes)


@pytest.mark.slow
@profile("modularity", slow=True)
@given(code_specs(), points_slow, dims, factor_sizes, bins)
def test_modularity_explicitness_contract_long(spec, n, d, sizes, num_bins) -> None:
    _run_modularity(spec, n, d, sizes, num_bins)


@pytest.mark.slow
@profile("irs", slow=True)
@given(code_specs(), points_slow, dims, factor_sizes, bins, quantiles)
def test_irs_contract_long(spec, n, d, sizes, num_bins, quantile) -> None:
    _run_irs(spec, n, d, sizes, num_bins, quantile)


@pytest.mark.slow
@profile("unsupervised", slow=True)
@given(code_specs(), points_slow, dims, bins)
def test_unsupervised_contract_long(spec, n, d, num_bins) -> None:
    _run_unsupervised(spec, n, d, num_bins)


@pytest.mark.slow
@profile("factor_vae", slow=True)
@given(code_specs(), *fvae_args)
def test_factor_vae_contract_long(spec, d, batches, batch, num_factors, threshold) -> None:
    _run_factor_vae(spec, d, batches, batch, num_factors, threshold)


@pytest.mark.slow
@profile("beta_vae", slow=True)
@given(code_specs(), *bvae_args)
def test_beta_vae_contract_long(spec, d, pairs, batch, num_factors) -> None:
    _run_beta_vae(spec, d, pairs, batch, num_factors)
