"""The geometry measures' fast paths (float32 block products, validation riding on the means and the Gram) agree
with the textbook numpy formulas to 1e-6 and keep the one-line errors of `as_codes`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.measures.geometry import cca, effective_dimensionality, linear_cka, pca_spectrum

N = 2500  # blocks of 512 rows (one array) and 2,048 (pairs), the last one partial


def numpy_pr(x: np.ndarray) -> float:
    lam = np.linalg.eigvalsh(np.cov(x.astype(np.float64).T))
    return float(lam.sum() ** 2 / (lam**2).sum())


def numpy_cka(x: np.ndarray, y: np.ndarray) -> float:
    x = x.astype(np.float64) - x.mean(0, dtype=np.float64)
    y = y.astype(np.float64) - y.mean(0, dtype=np.float64)
    return float(np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    d = 96
    s = rng.standard_normal((N, d))
    rho = np.linspace(0.99, 0.01, d)
    x = s @ rng.standard_normal((d, d))
    y = (s * rho + rng.standard_normal((N, d)) * np.sqrt(1 - rho**2)) @ rng.standard_normal((d, d))
    low = rng.standard_normal((N, 3)) @ rng.standard_normal((3, d))
    return {
        "correlated": (x, y),
        "isotropic": (rng.standard_normal((N, d)), rng.standard_normal((N, d))),
        "rank_deficient": (low, np.hstack([low[:, :40], np.zeros((N, d - 40))])),
        "offset": (x + 300.0, y - 1e3),
        "column_scales": (x * np.logspace(-3, 3, d), y),
        "positive": (np.abs(x), np.abs(y)),
        "same_map": (x, 2.0 * x @ np.linalg.qr(rng.standard_normal((d, d)))[0] + 1.0),
    }


CASES = _cases()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_participation_ratio_and_cka_equal_the_numpy_formulas(case: str, dtype: type) -> None:
    x, y = (a.astype(dtype) for a in CASES[case])
    tol = 1e-6 if dtype == np.float32 else 1e-10
    assert abs(effective_dimensionality(x).score - numpy_pr(x)) <= tol
    assert abs(linear_cka(x, y).score - numpy_cka(x, y)) <= tol
    assert effective_dimensionality(x).total_variance == pytest.approx(np.cov(x.astype(np.float64).T).trace(), rel=1e-6)


def test_float32_outside_its_safe_range_is_computed_in_float64() -> None:
    x, y = CASES["correlated"]
    for scale in (1e20, 1e-25):  # squares overflow / underflow float32
        xs, ys = (x * scale).astype(np.float32), (y * scale).astype(np.float32)
        assert abs(effective_dimensionality(xs).score - numpy_pr(xs)) <= 1e-6
        assert abs(linear_cka(xs, ys).score - numpy_cka(xs, ys)) <= 1e-6


def test_inputs_of_any_layout_and_kind() -> None:
    x, y = (a.astype(np.float32) for a in CASES["correlated"])
    expected_pr, expected_cka = numpy_pr(x), numpy_cka(x, y)
    assert abs(effective_dimensionality(np.asfortranarray(x)).score - expected_pr) <= 1e-6
    assert abs(effective_dimensionality(torch.from_numpy(x)).score - expected_pr) <= 1e-6
    assert abs(linear_cka(x, y.astype(np.float64)).score - expected_cka) <= 1e-6  # mixed dtypes
    strided = np.repeat(x, 2, axis=0)[::2]
    assert abs(linear_cka(strided, y).score - expected_cka) <= 1e-6
    ints = np.random.default_rng(0).integers(-5, 6, (300, 7))
    assert effective_dimensionality(ints).score == pytest.approx(numpy_pr(ints), abs=1e-10)


def test_spectrum_and_cca_of_float32_rank_deficient_inputs_stay_exact() -> None:
    low, _ = CASES["rank_deficient"]
    x = low.astype(np.float32)
    lam = pca_spectrum(x).eigenvalues
    assert np.allclose(lam[:3], np.linalg.eigvalsh(np.cov(x.astype(np.float64).T))[::-1][:3], rtol=1e-10)
    assert (lam[3:] < 1e-9 * lam[0]).all()
    res = cca(x, x[:, :10] @ np.random.default_rng(1).standard_normal((10, 10)).astype(np.float32))
    assert res.rank_x == 3 and res.rank_y == 3 and np.allclose(res.correlations, 1.0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_values_are_named_in_one_line(dtype: type) -> None:
    x = CASES["correlated"][0].astype(dtype)
    for value, shown in ((np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")):
        bad = x.copy()
        bad[1500, 7] = value
        for call in (lambda: effective_dimensionality(bad), lambda: linear_cka(x, bad), lambda: pca_spectrum(bad)):
            with pytest.raises(MtlensError) as err:
                call()
            assert f"contains {shown} at point 1500, dimension 7" in str(err.value) and "\n" not in str(err.value)


def test_magnitudes_past_the_metrics_limit_are_refused_in_one_line() -> None:
    x = CASES["isotropic"][0].copy()
    x[10, 3] = 1e51
    for call in (lambda: effective_dimensionality(x), lambda: linear_cka(x, x[:, ::-1])):
        with pytest.raises(MtlensError, match=r"^x reach 1e\+51 in dimension 3; .*rescale the codes$"):
            call()
    x[10, 3] = 1e49  # under the limit: measured, not refused
    assert effective_dimensionality(x).score == pytest.approx(1.0, abs=1e-6)


def test_bench_geometry_lines_report_equal_values() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_geometry.py"), "--n", "1200", "--d", "16",
                          "--repeat", "1", "--threads", "1", "--cca-components", "2"],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"})
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["measure"] for line in lines] == ["participation_ratio", "linear_cka", "linear_cka", "cca"]
    assert all(line["equal_1e-6"] and line["n"] == 1200 for line in lines)
