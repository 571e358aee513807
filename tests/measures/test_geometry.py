import numpy as np
import pytest
from sklearn.cross_decomposition import CCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline

from mtlens import MtlensError
from mtlens.measures._linear_probe import folds
from mtlens.measures.geometry import (cca, effective_dimensionality, linear_cka, linear_decodability,
                                      participation_ratio, pca_spectrum, svcca)


def _equal_spectrum(n: int, k: int, d: int, seed: int = 0) -> np.ndarray:
    """Points [n, d] whose covariance has exactly k equal non-zero eigenvalues, in a rotated basis."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, k))
    q, _ = np.linalg.qr(a - a.mean(0))  # orthonormal, centred columns: covariance = I_k / (n - 1)
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return np.hstack([q, np.zeros((n, d - k))]) @ rot * 3.0


@pytest.mark.parametrize("k", [1, 3, 6])
def test_participation_ratio_of_k_equal_eigenvalues_is_k(k: int) -> None:
    x = _equal_spectrum(200, k, 6)
    assert effective_dimensionality(x).score == pytest.approx(k, rel=1e-10)
    spec = pca_spectrum(x)
    assert spec.score == pytest.approx(k, rel=1e-10)
    assert np.allclose(spec.explained_ratio[:k], 1 / k) and np.allclose(spec.explained_ratio[k:], 0, atol=1e-12)
    assert participation_ratio([2.0] * k + [0.0]) == pytest.approx(k)


def test_effective_dimensionality_matches_the_numpy_formula() -> None:
    x = np.random.default_rng(1).standard_normal((500, 12)) * np.linspace(0.1, 3, 12)
    lam = np.linalg.eigvalsh(np.cov(x.T))
    expected = lam.sum() ** 2 / (lam**2).sum()
    assert effective_dimensionality(x).score == pytest.approx(expected, rel=1e-12)
    assert effective_dimensionality(x.astype(np.float32)).score == pytest.approx(expected, rel=1e-6)
    assert np.allclose(pca_spectrum(x).eigenvalues, lam[::-1], rtol=1e-10)


def test_cca_and_cka_of_a_linear_map_of_itself() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6))
    a = rng.standard_normal((6, 6)) + 3 * np.eye(6)  # invertible, not orthogonal
    res = cca(x, x @ a + 5.0)
    assert res.correlations.shape == (6,) and np.allclose(res.correlations, 1.0, atol=1e-9)
    assert res.score == pytest.approx(1.0, abs=1e-9)
    assert svcca(x, x @ a, keep=1.0).score == pytest.approx(1.0, abs=1e-9)
    # CKA is invariant to orthogonal maps and isotropic scaling (Kornblith et al. 2019) ...
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    assert linear_cka(x, 2.5 * x @ q - 1.0).score == pytest.approx(1.0, abs=1e-12)
    # ... and not to a general invertible map: that is what sets it apart from CCA.
    assert linear_cka(x, x @ a).score < 0.99


def test_cka_and_cca_of_independent_noise_are_near_zero() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4000, 8)), rng.standard_normal((4000, 8))
    assert linear_cka(x, y).score < 0.01
    assert cca(x, y).correlations.max() < 0.1


def test_cca_matches_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    s = rng.standard_normal((3000, 5))
    rho = np.array([0.95, 0.8, 0.6, 0.4, 0.2])
    x = s @ rng.standard_normal((5, 5))
    y = (s * rho + rng.standard_normal((3000, 5)) * np.sqrt(1 - rho**2)) @ rng.standard_normal((5, 5))
    ours = cca(x, y).correlations
    ref = CCA(n_components=3, max_iter=5000, tol=1e-14).fit(x, y)
    xs, ys = ref.transform(x, y)
    expected = [np.corrcoef(xs[:, i], ys[:, i])[0, 1] for i in range(3)]
    assert np.allclose(ours[:3], expected, atol=1e-6)


def test_cca_drops_constant_directions() -> None:
    rng = np.random.default_rng(5)
    x = np.hstack([rng.standard_normal((300, 3)), np.ones((300, 2))])
    res = cca(x, x[:, :3] @ rng.standard_normal((3, 3)))
    assert res.rank_x == 3 and np.allclose(res.correlations, 1.0)


def test_linear_decodability_matches_scikit_learn_probes() -> None:
    rng = np.random.default_rng(6)
    codes = rng.standard_normal((300, 4))
    reg = codes @ np.array([1.0, -2.0, 0.0, 0.5]) + 0.3 * rng.standard_normal(300)
    cls = np.digitize(codes[:, 0] + 0.5 * codes[:, 1], [-0.7, 0.7])
    res = linear_decodability(codes, np.stack([reg, cls], 1), kinds=["regression", "classification"],
                              names=["reg", "cls"], folds_k=4, seed=3, alpha=0.1)
    parts = folds(300, 4, 3)
    cv = [(np.setdiff1d(np.arange(300), t), t) for t in parts]
    r2 = np.mean([Ridge(alpha=0.1).fit(codes[tr], reg[tr]).score(codes[te], reg[te]) for tr, te in cv])
    acc = np.mean([make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(codes[tr], cls[tr])
                   .score(codes[te], cls[te]) for tr, te in cv])
    assert res.scores[0] == pytest.approx(r2, abs=1e-10)
    assert res.scores[1] == pytest.approx(acc, abs=1e-9)
    assert res.as_dict()["decodability/reg"] == pytest.approx(r2, abs=1e-10)


@pytest.mark.parametrize("fn", [effective_dimensionality, pca_spectrum])
def test_bad_single_inputs(fn) -> None:
    x = np.random.default_rng(0).standard_normal((20, 4))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(MtlensError, match="nan at point 3, dimension 1"):
        fn(bad)
    with pytest.raises(MtlensError, match="3 samples for 4 dimensions"):
        fn(x[:3])
    with pytest.raises(MtlensError, match="constant"):
        fn(np.ones((20, 4)))


@pytest.mark.parametrize("fn", [cca, svcca, linear_cka])
def test_bad_pairs(fn) -> None:
    x = np.random.default_rng(0).standard_normal((20, 4))
    with pytest.raises(MtlensError, match="x has 20 samples and y has 19"):
        fn(x, x[:19])
    with pytest.raises(MtlensError, match="y has 3 samples for 4 dimensions"):
        fn(x[:3, :2], x[:3])
    with pytest.raises(MtlensError, match="inf"):
        fn(x, np.where(x > 2, np.inf, x))
    for err in (MtlensError,):
        with pytest.raises(err, match="y must be a 2-D array"):
            fn(x, x[:, 0])
