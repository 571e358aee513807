"""Analytic cases, invariances, bad input and the evaluator's caching for the disentanglement metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlens.data.tiny import TinyShapes
from mtlens.errors import MtlensError
from mtlens.measures import disentanglement as D


def _grid_factors(n: int, sizes=(4, 5, 6), seed: int = 0) -> np.ndarray:
    rs = np.random.RandomState(seed)
    return np.stack([rs.randint(s, size=n) for s in sizes], axis=1)


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return _grid_factors(2000)


# ------------------------------------------------------------------------------------------- analytic cases
def test_identity_code_gives_mig_one(factors):
    # each factor has <= 20 values, so the 20-bin histogram keeps every value in its own bin: MI = H(factor)
    codes = np.concatenate([factors.astype(np.float64), np.random.RandomState(1).rand(len(factors), 1)], axis=1)
    result = D.mig(codes, factors)
    assert result.score == pytest.approx(1.0, abs=0.02)
    np.testing.assert_allclose(np.diag(result.mutual_info[:3]), result.entropy, rtol=1e-12)
    np.testing.assert_allclose(result.entropy, np.log([4, 5, 6]), atol=0.02)


def test_independent_code_gives_mig_near_zero(factors):
    codes = np.random.RandomState(2).randn(len(factors), 4)
    assert D.mig(codes, factors).score < 0.03


def test_rotated_code_lowers_dci_d_and_c(factors):
    y, yt = factors[:600, :2], _grid_factors(300, seed=3)[:, :2]
    axis = y.astype(np.float64) + 0.05 * np.random.RandomState(4).randn(600, 2)
    axis_t = yt.astype(np.float64) + 0.05 * np.random.RandomState(5).randn(300, 2)
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    rot = np.array([[c, -s], [s, c]])
    aligned = D.dci(axis, y, axis_t, yt, random_state=0, n_jobs=1)
    rotated = D.dci(axis @ rot, y, axis_t @ rot, yt, random_state=0, n_jobs=1)
    assert aligned.disentanglement > 0.9 and aligned.completeness > 0.9
    assert rotated.disentanglement < aligned.disentanglement - 0.3
    assert rotated.completeness < aligned.completeness - 0.3
    assert aligned.informativeness_test > 0.95


def test_sap_identity_is_high_and_noise_is_low(factors):
    y, yt = factors[:800], _grid_factors(400, seed=6)
    good = D.sap(y.astype(float), y, yt.astype(float), yt)
    noise = D.sap(np.random.RandomState(0).randn(800, 3), y, np.random.RandomState(1).randn(400, 3), yt)
    # a linear one-feature classifier separates only the extreme classes of an ordinal factor, so even the
    # identity code stays far below 1 on 4-6 valued factors; noise codes have no gap at all
    assert good.score > 0.3
    assert noise.score < 0.05


def test_modularity_of_axis_aligned_codes_is_one(factors):
    y, yt = factors[:800], _grid_factors(400, seed=6)
    result = D.modularity_explicitness(y.astype(float), y, yt.astype(float), yt)
    assert result.modularity == pytest.approx(1.0, abs=0.01)
    assert result.explicitness_test > 0.8


def test_factor_vae_perfect_code_scores_one():
    # batches where the fixed factor's code is constant and the others vary: every vote is right
    rs = np.random.RandomState(0)
    k, d, b = 3, 3, 32
    fixed = rs.randint(k, size=60)
    batches = rs.randn(60, b, d)
    batches[np.arange(60), :, fixed] = 0.5
    result = D.factor_vae_score(rs.randn(500, d), batches[:40], fixed[:40], batches[40:], fixed[40:], num_factors=k)
    assert result.score == 1.0 and result.train_accuracy == 1.0
    np.testing.assert_array_equal(np.argmax(result.train_votes, axis=0), [0, 1, 2])


def test_factor_vae_all_dims_pruned_gives_zero():
    rs = np.random.RandomState(0)
    result = D.factor_vae_score(rs.randn(100, 2) * 0.01, rs.randn(5, 8, 2), np.zeros(5), rs.randn(5, 8, 2), np.zeros(5), 2)
    assert (result.score, result.num_active_dims, result.num_active_dims_corrected) == (0.0, 0, 0)


def test_factor_vae_reports_reference_and_corrected_active_counts():
    rs = np.random.RandomState(0)
    var = rs.randn(300, 3)
    var[:, 1] *= 0.01  # pruned
    fixed = rs.randint(2, size=20)
    result = D.factor_vae_score(var, rs.randn(20, 16, 3), fixed, rs.randn(10, 16, 3), fixed[:10], num_factors=2)
    assert result.num_active_dims == 3  # the reference's len(mask)
    assert result.num_active_dims_corrected == 2


def test_unsupervised_independent_codes_have_small_total_correlation():
    rs = np.random.RandomState(0)
    z = rs.randn(5000, 3)
    mixed = z @ np.array([[1.0, 0.9, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert D.unsupervised(z).gaussian_total_correlation < 0.01
    # for 2 correlated Gaussians TC = -0.5 log(1 - rho^2), rho = 0.9 / sqrt(1.81)
    rho2 = 0.81 / 1.81
    assert D.unsupervised(mixed).gaussian_total_correlation == pytest.approx(-0.5 * np.log(1 - rho2), abs=0.03)


# -------------------------------------------------------------------------------------------------- invariances
def test_permuting_code_dimensions_leaves_mig_sap_dci_unchanged(factors):
    rs = np.random.RandomState(9)
    y, yt = factors[:500, :2], _grid_factors(250, seed=8)[:, :2]
    codes = np.concatenate([y + 0.3 * rs.randn(500, 2), rs.randn(500, 2)], axis=1)
    codes_t = np.concatenate([yt + 0.3 * rs.randn(250, 2), rs.randn(250, 2)], axis=1)
    perm = [2, 0, 3, 1]
    assert D.mig(codes[:, perm], y).score == D.mig(codes, y).score
    assert D.sap(codes[:, perm], y, codes_t[:, perm], yt).score == D.sap(codes, y, codes_t, yt).score
    a = D.dci(codes, y, codes_t, yt, random_state=0, n_jobs=1)
    b = D.dci(codes[:, perm], y, codes_t[:, perm], yt, random_state=0, n_jobs=1)
    assert b.disentanglement == pytest.approx(a.disentanglement, abs=0.02)
    assert b.completeness == pytest.approx(a.completeness, abs=0.02)
    assert b.informativeness_test == pytest.approx(a.informativeness_test, abs=0.02)


def test_dci_fast_is_its_own_metric(factors):
    y, yt = factors[:400, :2], _grid_factors(200, seed=8)[:, :2]
    codes, codes_t = y + 0.1 * np.random.RandomState(0).randn(400, 2), yt + 0.1 * np.random.RandomState(1).randn(200, 2)
    fast = D.dci(codes, y, codes_t, yt, fast=True, random_state=0)
    assert fast.name == "dci_fast" and "dci_fast/completeness" in fast.as_dict()
    assert fast.disentanglement > 0.8 and fast.informativeness_test > 0.9


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "codes, factors, message",
    [
        (np.zeros((10, 3)), np.zeros((9, 2), int), "rows"),
        (np.array([[0.0, np.nan]] * 10), np.arange(20).reshape(10, 2) % 3, "nan"),
        (np.array([[0.0, np.inf]] * 10), np.arange(20).reshape(10, 2) % 3, "inf"),
        (np.zeros((10, 1)), np.arange(20).reshape(10, 2) % 3, "at least 2"),
        (np.random.RandomState(0).rand(10, 3), np.stack([np.arange(10) % 2, np.zeros(10, int)], 1), "single value"),
        (np.random.RandomState(0).rand(10, 3), np.random.RandomState(0).rand(10, 2), "integer"),
    ],
)
def test_mig_bad_input_raises_one_clear_error(codes, factors, message):
    with pytest.raises(MtlensError, match=f"(?i){message}"):
        D.mig(codes, factors)


def test_more_bins_than_points_raises():
    with pytest.raises(MtlensError, match="num_bins=20 is more than the 10 points"):
        D.mig(np.random.RandomState(0).rand(10, 3), np.arange(10)[:, None] % 2)


def test_sap_discrete_needs_a_test_split():
    with pytest.raises(MtlensError, match="codes_test"):
        D.sap(np.random.RandomState(0).rand(10, 3), np.arange(10)[:, None] % 2)


def test_constant_code_is_finite_everywhere():
    rs = np.random.RandomState(0)
    y = rs.randint(3, size=(200, 2))
    codes = np.concatenate([y.astype(float), np.ones((200, 1))], axis=1)  # one dead dimension
    assert np.isfinite(D.mig(codes, y).score)
    assert np.isfinite(D.irs(codes, y).score) and D.irs(codes, y).num_active_dims_corrected == 2
    with pytest.raises(MtlensError, match="constant"):
        D.unsupervised(codes)


# -------------------------------------------------------------------------------------------------- evaluator
class CountingEncoder:
    def __init__(self) -> None:
        self.calls = 0
        self.seen = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen += images.shape[0]
        flat = images.flatten(1).double()
        grid = torch.arange(images.shape[-1], dtype=torch.float64)
        mass = flat.sum(1)
        cx = (images.sum(2).flatten(1).double() * grid).sum(1) / mass
        cy = (images.sum(3).flatten(1).double() * grid).sum(1) / mass
        return torch.stack([cx, cy, mass / 100.0], dim=1).float()


SMALL = {"mig": {"num_train": 300}, "factor_vae": {"batch_size": 8, "num_train": 40, "num_eval": 20, "num_variance_estimate": 100}}


def test_evaluator_encodes_each_distinct_image_once():
    dataset = TinyShapes(image_size=16, num_positions=4)
    encoder = CountingEncoder()
    cached = D.evaluate(dataset, encoder, metrics=["mig", "factor_vae"], batch_size=64, device="cpu", settings=SMALL)
    assert encoder.seen <= len(dataset) and encoder.calls == -(-encoder.seen // 64)
    fresh = D.evaluate(dataset, CountingEncoder(), metrics="mig,factor_vae", cache_codes=False, device="cpu", settings=SMALL)
    assert cached["mig"].score == fresh["mig"].score
    assert cached["factor_vae"].score == fresh["factor_vae"].score
    again = D.evaluate(dataset, CountingEncoder(), metrics=["mig", "factor_vae"], device="cpu", settings=SMALL)
    assert again["mig"].as_dict() == cached["mig"].as_dict()  # same seed, same numbers
    other = D.evaluate(dataset, CountingEncoder(), metrics=["mig"], seed=1, device="cpu", settings={"mig": SMALL["mig"]})
    assert other["mig"].score != cached["mig"].score
    assert cached["mig"].score > 0.3  # centre of mass codes separate the positions


def test_evaluator_rejects_unknown_metrics_settings_and_bad_encoders():
    dataset = TinyShapes(image_size=16, num_positions=4)
    with pytest.raises(MtlensError, match="unknown metric 'nope'"):
        D.evaluate(dataset, CountingEncoder(), metrics=["nope"])
    with pytest.raises(MtlensError, match="unknown setting 'bins'"):
        D.evaluate(dataset, CountingEncoder(), metrics=["mig"], settings={"mig": {"bins": 3}})
    with pytest.raises(MtlensError, match="NaN or inf"):
        D.evaluate(dataset, lambda x: torch.full((x.shape[0], 2), float("nan")), metrics=["mig"], device="cpu")
    with pytest.raises(MtlensError, match=r"codes \[N, d\]"):
        D.evaluate(dataset, lambda x: torch.zeros(x.shape[0]), metrics=["mig"], device="cpu")


def test_registry_names():
    assert {"mig", "factor_vae", "beta_vae", "sap", "dci", "modularity_explicitness", "irs", "unsupervised"} <= set(
        D.METRICS.available()
    )
    assert D.METRICS.create("mig").settings == {"num_train": 10000, "batch_size": 16, "num_bins": 20}
    assert D.METRICS.create("factor_vae").settings["num_variance_estimate"] == 10000
