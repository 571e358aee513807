"""Defects the property tests found in the disentanglement metrics, each pinned by a plain example."""

from __future__ import annotations

import numpy as np
import pytest

from mtlens.errors import MtlensError
from mtlens.measures import disentanglement as D

RS = np.random.RandomState(0)
CODES = RS.randn(60, 3)
FACTORS = np.stack([np.arange(60) % 3, np.arange(60) % 4], axis=1)


def test_codes_too_close_to_bin_are_one_line() -> None:
    # values a few float64 ulps apart: numpy cannot make equal-width bins (it raised a raw ValueError)
    codes = 1.0 + (np.arange(60)[:, None] % np.array([2, 3, 4])) * np.finfo(float).eps
    for call in (lambda: D.mig(codes, FACTORS, num_bins=10), lambda: D.unsupervised(codes, num_bins=10)):
        with pytest.raises(MtlensError, match="too narrow for 10 equal-width bins in float64"):
            call()


def test_rank_deficient_codes_give_no_infinite_total_correlation() -> None:
    codes = np.stack([CODES[:, 0], CODES[:, 1], 2 * CODES[:, 0] - CODES[:, 1]], axis=1)
    with pytest.raises(MtlensError, match="covariance is singular"):
        D.unsupervised(codes)


def test_bool_codes_make_pair_features() -> None:
    first, second = CODES[:20].reshape(4, 5, 3) > 0, CODES[20:40].reshape(4, 5, 3) > 0
    np.testing.assert_array_equal(D.pair_features(first, second), D.pair_features(first * 1.0, second * 1.0))


def test_irs_of_a_constant_float32_column_is_finite() -> None:
    # 0.05 repeated has a float32 variance that rounds above 0 but no deviation: the reference gives NaN
    codes = CODES.astype(np.float32)
    codes[:, 0] = 0.05
    result = D.irs(codes, FACTORS)
    assert np.isfinite(result.score) and result.num_active_dims_corrected == 2


def test_float16_and_extreme_float32_codes_are_computed_in_float64() -> None:
    # float16 sums overflow past 65504 (IRS' num_active_dims was inf); float32 variances of 1e-30 codes were 0
    half = (CODES * 300).astype(np.float16)
    assert D.irs(half, FACTORS).as_dict() == D.irs(half.astype(np.float64), FACTORS).as_dict()
    tiny = (CODES * 1e-30).astype(np.float32)
    assert D.irs(tiny, FACTORS).as_dict() == D.irs(tiny.astype(np.float64), FACTORS).as_dict()
    assert D.irs(tiny, FACTORS).num_active_dims_corrected == 3
    batches = tiny[:50].reshape(10, 5, 3)
    fixed = np.arange(10) % 2
    got = D.factor_vae_score(tiny, batches, fixed, batches, fixed, num_factors=2, threshold=0.0).as_dict()
    assert got == D.factor_vae_score(tiny.astype(np.float64), batches.astype(np.float64), fixed,
                                     batches.astype(np.float64), fixed, num_factors=2, threshold=0.0).as_dict()
    assert got["factor_vae/num_active_dims_corrected"] == 3


def test_in_range_float32_codes_keep_their_dtype() -> None:
    from mtlens.measures.disentanglement._utils import as_float_array

    codes = CODES.astype(np.float32)
    assert as_float_array(codes, "codes").dtype == np.float32  # the reference's float32 numbers stay bitwise


@pytest.mark.usefixtures("hang_guard")  # on the old code liblinear never returned here
def test_huge_codes_are_refused_instead_of_hanging_liblinear() -> None:
    with pytest.raises(MtlensError, match="reach 1e\\+80 .* rescale the codes"):
        D.sap(CODES * 1e80 / np.abs(CODES).max(), FACTORS, CODES, FACTORS)


def test_factor_vae_at_threshold_0_never_votes_for_a_constant_dimension() -> None:
    codes = CODES.copy()
    codes[:, 2] = 1.0
    batches = codes[:50].reshape(10, 5, 3)
    fixed = np.arange(10) % 2
    with np.errstate(all="raise"):  # the reference divides 0 / 0 there
        result = D.factor_vae_score(codes, batches, fixed, batches, fixed, num_factors=2, threshold=0.0)
    assert result.num_active_dims_corrected == 2 and result.train_votes[:, 2].sum() == 0


def test_beta_vae_checks_its_features_and_labels() -> None:
    points = np.abs(CODES[:20])
    labels = np.arange(20) % 2
    bad = points.copy()
    bad[3, 1] = np.nan
    with pytest.raises(MtlensError, match="eval_points contains nan"):
        D.beta_vae_score(points, labels, bad, labels)
    with pytest.raises(MtlensError, match="got 19 eval_labels for 20 points"):
        D.beta_vae_score(points, labels, points, labels[:19])
    with pytest.raises(MtlensError, match="eval_points have 2 features, train_points 3"):
        D.beta_vae_score(points, labels, points[:, :2], labels)


def test_a_result_never_holds_a_nan() -> None:
    with pytest.raises(MtlensError, match="mig is nan for these codes"):
        D.MIGResult(name="mig", score=float("nan"), per_factor=np.zeros(1), mutual_info=np.zeros((1, 1)),
                    entropy=np.ones(1), factor_names=("f",))
