"""The aggregators' defects of issue 10, one test each: no hang, no raw LinAlgError, no silent NaN or zero, a
one-line MtlensError where no answer exists. Every call runs under a hang guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.methods import METHODS, GradientAggregator, available_methods, create_method
from mtlens.methods._solvers import cagrad_weights, min_norm_weights, nash_weights, wolfe_min_norm

from _guards import hang_guard

GRADIENT_METHODS = [n for n in available_methods() if issubclass(METHODS.get(n), GradientAggregator)]


def _jac(scale: float = 1.0, dtype: torch.dtype = torch.float32, rows: int = 3) -> torch.Tensor:
    return (torch.randn(rows, 50, generator=torch.Generator().manual_seed(0)) * scale).to(dtype)


def _rows(name: str) -> int:
    """Returns 3, or the fewest task gradients the method's definition takes when that is more (Krum: 4)."""
    return max(3, create_method(name, 3).min_rows)


def _run(name: str, jac: torch.Tensor) -> torch.Tensor:
    """Returns the update of a fresh method (losses of ones, for the methods that use them)."""
    return create_method(name, jac.shape[0]).aggregate(jac, torch.ones(jac.shape[0]))


def test_mgda_on_an_overflowing_half_gram_returns() -> None:
    # before: (randn(3, 50) * 100).half() made J J^T overflow in float16 and the min-norm loop never returned
    with hang_guard():
        d = create_method("mgda", n_tasks=3).aggregate(_jac(100.0, torch.float16))
    assert d.dtype == torch.float16 and bool(torch.isfinite(d).all()) and float(d.float().norm()) > 0
    want = create_method("mgda", 3).aggregate(_jac(100.0, torch.float16).double())
    torch.testing.assert_close(d.double(), want, rtol=2e-3, atol=2e-3 * float(want.abs().max()))


@pytest.mark.parametrize("name", GRADIENT_METHODS)
@pytest.mark.parametrize("scale", [1e-30, 1e20, 1e30])
def test_extreme_scales_give_the_scaled_update(name: str, scale: float) -> None:
    # before: mgda / aligned_mtl / imtl_g raised raw LinAlgErrors at 1e20 and 1e30; nash_mtl, aligned_mtl and
    # imtl_g returned silent zeros at 1e-30 (the float32 Gram matrix underflowed)
    cls = METHODS.get(name)
    base = _jac(rows=_rows(name))
    with hang_guard():
        got = _run(name, base * scale)
    want = _run(name, base)
    assert got.dtype == torch.float32 and bool(torch.isfinite(got).all())
    if not {"scale_invariant", "scale_equivariant"} & cls.claims:
        return  # MoDo, PCD: their update depends on the scale by definition (see their exemptions)
    expected = want if "scale_invariant" in cls.claims else want.double() * scale
    torch.testing.assert_close(got.double(), expected.double(), rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_mgda_weights_do_not_vanish_at_gradient_norms_of_1e4() -> None:
    # before: the exact solver's KKT systems mixed |g|^2 ~ 1e8 with ones and lstsq cut G off: weights 0, update 0
    jac = torch.randn(2, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    small, large = create_method("mgda", 2), create_method("mgda", 2)
    d_small, d_large = small.aggregate(jac), large.aggregate(1e4 * jac)
    torch.testing.assert_close(large.last_weights, small.last_weights)
    torch.testing.assert_close(d_large, 1e4 * d_small)


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_float16_is_computed_in_float32_and_returned_in_float16(name: str) -> None:
    # before: imtl_g returned NaN and aligned_mtl a zero update on (randn(3, 50) * 100).half(), silently
    half = _jac(100.0, torch.float16, _rows(name))
    with hang_guard():
        got = _run(name, half)
    want = _run(name, half.float())
    assert got.dtype == torch.float16 and bool(torch.isfinite(got).all())
    torch.testing.assert_close(got.float(), want, rtol=1e-2, atol=1e-3 * float(want.abs().max()))
    assert float(got.float().norm()) > 0


@pytest.mark.parametrize("name", GRADIENT_METHODS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_jacobians_are_refused(name: str, dtype: torch.dtype) -> None:
    # before: mgda, cagrad and imtl_g returned all-zero updates (the weights were cast to int)
    jac = (_jac(10.0) > 0) if dtype == torch.bool else _jac(10.0).to(dtype)
    message = rf"{METHODS.get(name).name}: the per-task gradients must be floating point, got {dtype}; convert with"
    with pytest.raises(MtlensError, match=message):
        _run(name, jac)


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_an_update_that_overflows_float16_is_an_error(name: str) -> None:
    jac = torch.full((_rows(name), 4), 60000.0, dtype=torch.float16)  # every gradient the same: the sum overflows
    jac[1, 0] = 50000.0  # not exactly collinear
    try:
        with hang_guard():
            d = _run(name, jac)
    except MtlensError as err:
        assert "overflows torch.float16" in str(err) and "\n" not in str(err)
    else:  # methods whose update is a convex combination stay in range
        assert d.dtype == torch.float16 and bool(torch.isfinite(d).all())


def test_every_solver_is_bounded_and_checks_for_non_finite_input() -> None:
    bad = np.array([[1.0, np.inf], [np.inf, 1.0]])
    for call in (lambda: wolfe_min_norm(bad), lambda: min_norm_weights(bad, "frank_wolfe"),
                 lambda: nash_weights(bad, np.ones(2)), lambda: cagrad_weights(bad, 0.5)):
        with pytest.raises(MtlensError, match="Gram matrix of the task gradients is not finite"):
            call()
    gram = np.array([[1.0, 0.2, -0.3], [0.2, 2.0, 0.5], [-0.3, 0.5, 1.5]])
    with pytest.raises(MtlensError, match="did not converge in 1 steps"):
        wolfe_min_norm(gram, max_iter=1)
    with pytest.raises(MtlensError, match="did not converge in 1 Newton steps"):
        nash_weights(gram, np.full(3, 50.0), max_iter=1)
    np.testing.assert_allclose(wolfe_min_norm(gram).sum(), 1.0)
