"""Property-based tests (Hypothesis) over every gradient aggregator: the contract of issue 10.

Inputs: random shapes (1-6 tasks, 1-12 coordinates), dtypes (float16, bfloat16, float32, float64, int32,
int64), scales 10^-30 .. 10^30, and kinds: Gaussian, constant, rank 1 (either sign), rank deficient, zero, one
zero row, NaN or inf in one entry. Contract for every call: it returns a finite [P] update in the Jacobian's
dtype, or raises MtlensError with one line; it never hangs (a 60 s liveness guard per call, not a timing
assertion), never returns NaN silently, and never returns a zero update where the same values in float64 give
a non-zero one that the dtype can hold (the silent zeros of 16-bit and tiny inputs).

Settings: each (method, dtype) pair is its own test, so every dtype is exercised for every method (drawn from
one strategy, Hypothesis left whole dtypes out of 50 examples); the rest is drawn. The default profile runs
`DEFAULT_EXAMPLES` = 12 examples per pair (23 methods x 6 dtypes: 1656 aggregations, about 10 s on an idle
core); `test_contract_long` runs `LONG_EXAMPLES` = 150 per pair (9000) under `@pytest.mark.slow`. Both are
derandomized (Hypothesis's fixed seed, so a failure reproduces run to run), keep no example database (only
Hypothesis's own cache `.hypothesis/`, which ignores itself in git) and have no per-example deadline (no
timing assertions in the suite).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlens import MtlensError
from mtlens.methods import METHODS, GradientAggregator, available_methods, create_method

from _guards import hang_guard

GRADIENT_METHODS = [n for n in available_methods() if issubclass(METHODS.get(n), GradientAggregator)]
DEFAULT_EXAMPLES = 12
LONG_EXAMPLES = 150
KINDS = ("gaussian", "constant", "rank1", "rank_deficient", "zero", "zero_row", "nan", "inf")
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32, torch.int64)


def _profile(examples: int) -> Any:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def jacobians(draw: Any, dtype: torch.dtype) -> torch.Tensor:
    """Returns a `dtype` Jacobian of a random shape, scale and kind (made in float64, then cast)."""
    t, p = draw(st.integers(1, 6)), draw(st.integers(1, 12))
    kind = draw(st.sampled_from(KINDS))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    base = torch.randn(t, p, generator=gen, dtype=torch.float64)
    if kind == "constant":
        base = torch.full((t, p), float(base[0, 0]), dtype=torch.float64)
    elif kind == "rank1":
        base = torch.outer(torch.randn(t, generator=gen, dtype=torch.float64), base[0])
    elif kind == "rank_deficient":
        k = max(1, min(t, p) - 1)
        base = torch.randn(t, k, generator=gen, dtype=torch.float64) @ base[:k]
    elif kind == "zero":
        base = torch.zeros(t, p, dtype=torch.float64)
    elif kind == "zero_row":
        base[draw(st.integers(0, t - 1))] = 0.0
    if dtype.is_floating_point:
        base = base * 10.0 ** draw(st.integers(-30, 30))
    else:
        base = (base * 10).round()
    jac = base.to(dtype)
    if kind in ("nan", "inf") and dtype.is_floating_point:
        jac[draw(st.integers(0, t - 1)), draw(st.integers(0, p - 1))] = float(kind)
    return jac


def _call(name: str, jac: torch.Tensor) -> torch.Tensor | MtlensError:
    method = create_method(name, jac.shape[0] if METHODS.get(name).per_task_state else None)
    losses = torch.ones(jac.shape[0])  # for the methods that use them (MoCo, DB-MTL, MGDA's loss normalisers)
    try:
        with hang_guard():
            out = method.aggregate(jac, losses)
    except MtlensError as err:
        assert "\n" not in str(err), f"{name}: a multi-line error: {err}"
        return err
    assert bool(torch.isfinite(method.last_weights).all()), f"{name}: non-finite weights {method.last_weights}"
    return out


def check_contract(name: str, jac: torch.Tensor) -> None:
    """Asserts the contract of the module docstring for one aggregation of `jac`."""
    out = _call(name, jac)
    if not jac.dtype.is_floating_point or not bool(torch.isfinite(jac).all()):
        assert isinstance(out, MtlensError), f"{name}: {jac.dtype} / non-finite input was accepted"
        return
    if isinstance(out, MtlensError):
        return
    assert out.shape == (jac.shape[1],) and out.dtype == jac.dtype, f"{name}: got {out.dtype} {tuple(out.shape)}"
    assert bool(torch.isfinite(out).all()), f"{name}: a non-finite update {out}"
    if jac.dtype != torch.float64:
        ref = _call(name, jac.double())  # the same values, in float64
        # a zero is wrong only where the float64 update is clearly non-zero and representable in the dtype
        if isinstance(ref, torch.Tensor) and float(ref.norm()) > 1e-6 * float(jac.double().norm()):
            if bool((ref.to(jac.dtype) != 0).any()):
                assert bool((out != 0).any()), f"{name}: a zero update in {jac.dtype} where float64 gives {ref}"


def _contract_test(examples: int) -> Any:
    """Returns the contract test over every (method, dtype) pair with `examples` Hypothesis examples each."""

    @pytest.mark.parametrize("dtype", DTYPES, ids=str)
    @pytest.mark.parametrize("name", GRADIENT_METHODS)
    @_profile(examples)
    @given(data=st.data())
    def test(name: str, dtype: torch.dtype, data: st.DataObject) -> None:
        check_contract(name, data.draw(jacobians(dtype), label="jacobian"))

    return test


test_contract = _contract_test(DEFAULT_EXAMPLES)
test_contract_long = pytest.mark.slow(_contract_test(LONG_EXAMPLES))
