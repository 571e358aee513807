"""The aggregator property suite (TorchJD's standard), run over every registered gradient method.

Each method declares the `PROPERTIES` it claims (`claims`) and, for every other one, the reason it does not
(`exemptions`). A claimed property must hold on every matrix of the claim set; an exempted one must fail on at
least one matrix of a wider set, so an exemption never hides a property the method has. Every method gets a
fresh instance with the same seed per call, so random methods draw the same numbers. A method with per-task
state first aggregates a warm-up Jacobian of the same shape (transformed like the tested one: permuted,
scaled, zeroed), so its properties are checked after its state has moved, over a whole (two-step) history.
Matrices with fewer rows than a method's definition needs (`min_rows`: Krum, trimmed mean) are left out for
it. Also: stateless methods take any number of rows on one instance.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.methods import METHODS, GradientAggregator, available_methods, create_method
from mtlens.methods.base import PROPERTIES

GRADIENT_METHODS = [n for n in available_methods() if issubclass(METHODS.get(n), GradientAggregator)]


def _new(name: str, n_tasks: int) -> GradientAggregator:
    cls = METHODS.get(name)
    return create_method(name, n_tasks if cls.per_task_state else None)  # type: ignore[return-value]


def _losses(t: int) -> torch.Tensor:
    """Task losses for methods that use them (MoCo, DB-MTL): fixed positive values, the same for every matrix."""
    return torch.linspace(0.5, 1.5, t, dtype=torch.float64)


def _randn(t: int, p: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(t, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


#: Typical Jacobians: more coordinates than tasks, some with a common component (less conflict).
TYPICAL = [_randn(2, 5, 0), _randn(3, 8, 1, 0.3), _randn(4, 9, 2), _randn(5, 12, 3, 0.5), _randn(3, 3, 4, 0.2)]
#: Harder ones, where the exemptions show: more tasks than coordinates, a large and a small opposed gradient.
HARD = [_randn(4, 2, 5), _randn(6, 3, 6), torch.tensor([[1.0, 0.0], [-10.0, 0.1]], dtype=torch.float64),
        torch.tensor([[1.0, 0.2, 0.0], [-2.0, 1.0, 0.3], [0.5, -3.0, 1.0]], dtype=torch.float64)]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.allclose(a, b, rtol=1e-5, atol=1e-7 * max(float(b.abs().max()), 1e-300)))


def _warm_up(jac: torch.Tensor) -> torch.Tensor:
    """Returns the warm-up Jacobian for `jac`'s shape (a fixed draw, with a common component)."""
    return _randn(jac.shape[0], jac.shape[1], 1000 + jac.shape[0] * 31 + jac.shape[1], 0.2)


def _aggregate(name: str, jac: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor] = lambda j: j,
               losses: torch.Tensor | None = None) -> torch.Tensor:
    """Returns A(transform(J)) from a fresh instance; a stateful one first aggregates transform(warm-up)."""
    method = _new(name, jac.shape[0])
    losses = _losses(jac.shape[0]) if losses is None else losses
    if METHODS.get(name).per_task_state:
        method.aggregate(transform(_warm_up(jac)), losses)
    return method.aggregate(transform(jac), losses)


def _in_domain(name: str, jacs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Returns the matrices with enough rows for the method's definition."""
    return [j for j in jacs if j.shape[0] >= _new(name, j.shape[0]).min_rows]


def permutation_invariant(name: str, jac: torch.Tensor) -> bool:
    want = _aggregate(name, jac)
    t = jac.shape[0]
    perms = [torch.arange(t).flip(0), torch.randperm(t, generator=torch.Generator().manual_seed(1))]
    return all(_close(_aggregate(name, jac, lambda j, p=p: j[p], _losses(t)[p]), want) for p in perms)


def non_conflicting(name: str, jac: torch.Tensor) -> bool:
    d = _aggregate(name, jac)
    return bool(((jac @ d) >= -1e-9 * float(jac.norm() * d.norm())).all())


def scale_equivariant(name: str, jac: torch.Tensor) -> bool:
    want = _aggregate(name, jac)
    return all(_close(_aggregate(name, jac, lambda j, a=a: a * j), a * want) for a in (1e-3, 7.0, 1e4))


def scale_invariant(name: str, jac: torch.Tensor) -> bool:
    want = _aggregate(name, jac)
    return all(_close(_aggregate(name, jac, lambda j, a=a: a * j), want) for a in (1e-3, 7.0, 1e4))


def _finite(name: str, jac: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    m = _new(name, jac.shape[0])
    try:
        if METHODS.get(name).per_task_state:
            m.aggregate(transform(_warm_up(jac)), _losses(jac.shape[0]))
        d = m.aggregate(transform(jac), _losses(jac.shape[0]))
    except MtlensError:
        return False
    return bool(torch.isfinite(d).all()) and bool(torch.isfinite(m.last_weights).all())


def finite_on_zero(name: str, jac: torch.Tensor) -> bool:
    return _finite(name, jac, torch.zeros_like)


def finite_on_rank1(name: str, jac: torch.Tensor) -> bool:
    signs = torch.tensor([(-1.0) ** t * (t + 1) for t in range(jac.shape[0])], dtype=jac.dtype)
    return _finite(name, jac, lambda j: torch.outer(signs, j[0]))


def _identity_encoder_grads(name: str, level: str, chain: bool, jac_seed: int) -> list[torch.Tensor]:
    """Returns the gradients of a model whose encoder is the identity (z = theta) after one backward."""
    gen = torch.Generator().manual_seed(jac_seed)
    n = max(3, _new(name, 3).min_rows)
    theta = nn.Parameter(torch.randn(4, 3, generator=gen, dtype=torch.float64))
    heads = nn.ModuleList([nn.Linear(3, 1).double() for _ in range(n)])
    with torch.no_grad():
        for p in heads.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    y = torch.randn(4, n, generator=gen, dtype=torch.float64)
    method = create_method(name, n, level=level)
    steps = 2 if METHODS.get(name).per_task_state else 1  # a stateful method's second step uses its state
    for _ in range(steps):
        theta.grad = None
        heads.zero_grad()
        z = nn.Identity()(theta)
        losses = torch.stack([((h(z).squeeze(1) - y[:, t]) ** 2).mean() for t, h in enumerate(heads)])
        method.backward(losses, [theta], z if (chain or level == "feature") else None, heads.parameters())
    return [theta.grad.clone(), *(p.grad.clone() for p in heads.parameters())]


def levels_agree(name: str, jac: torch.Tensor) -> bool:
    if "feature" not in METHODS.get(name).levels:
        return False  # the method refuses level "feature": the levels cannot agree
    seed = int(jac.shape[0] * 100 + jac.shape[1])  # a different model for each matrix of the set
    feature = _identity_encoder_grads(name, "feature", True, seed)
    chained = _identity_encoder_grads(name, "param", True, seed)
    direct = _identity_encoder_grads(name, "param", False, seed)
    return all(_close(a, b) and _close(c, b) for a, b, c in zip(chained, feature, direct))


CHECKS: dict[str, Callable[[str, torch.Tensor], bool]] = {
    "permutation_invariant": permutation_invariant,
    "non_conflicting": non_conflicting,
    "scale_equivariant": scale_equivariant,
    "scale_invariant": scale_invariant,
    "finite_on_zero": finite_on_zero,
    "finite_on_rank1": finite_on_rank1,
    "levels_agree": levels_agree,
}


def test_the_suite_checks_every_property() -> None:
    assert CHECKS.keys() == PROPERTIES.keys()


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_every_property_is_claimed_or_exempted_with_a_reason(name: str) -> None:
    method = _new(name, 3)  # claims are read from an instance: a wrapper (CR-MOGM) takes its base's
    assert method.claims | method.exemptions.keys() == PROPERTIES.keys()
    assert not method.claims & method.exemptions.keys()
    assert all(isinstance(r, str) and len(r) > 20 for r in method.exemptions.values())


@pytest.mark.parametrize("prop", list(PROPERTIES))
@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_claimed_properties_hold_and_exemptions_are_real(name: str, prop: str) -> None:
    method = _new(name, 3)
    typical, wider = _in_domain(name, TYPICAL), _in_domain(name, TYPICAL + HARD)
    assert typical, f"{name}: no matrix of the claim set has enough rows"
    if prop in method.claims:
        failing = [tuple(j.shape) for j in typical if not CHECKS[prop](name, j)]
        assert not failing, f"{name} claims {prop} but it fails on {failing}"
    else:
        assert not all(CHECKS[prop](name, j) for j in wider), (
            f"{name} is exempted from {prop} ({method.exemptions[prop]}) but it holds on every matrix: claim it"
        )


def test_cagrad_is_non_conflicting_from_c_1() -> None:
    # TorchJD 0.18's test of CAGrad: non-conflicting for c >= 1 (our rescale=0 is its update)
    for c in (1.0, 2.0):
        for jac in TYPICAL + HARD:
            d = create_method("cagrad", c=c, rescale=0).aggregate(jac)
            assert bool(((jac @ d) >= -1e-6 * float(jac.norm() * d.norm())).all())


def test_nash_on_opposite_rank1_raises_one_line() -> None:
    with pytest.raises(MtlensError, match="bargaining solution does not exist") as err:
        create_method("nash_mtl", 3).aggregate(torch.outer(torch.tensor([1.0, -2.0, 3.0]), torch.ones(4)))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", [n for n in GRADIENT_METHODS if not METHODS.get(n).per_task_state])
def test_stateless_methods_take_any_number_of_rows(name: str) -> None:
    method = create_method(name)
    for t in (1, 2, 5, 3, 6):
        jac = _randn(t, 6, t)
        if 1 < t < method.min_rows:  # below the definition's domain (Krum, trimmed mean): a one-line error
            with pytest.raises(MtlensError, match=f"{method.name}: .*needs at least {method.min_rows} task gradients"):
                method.aggregate(jac, _losses(t))
            continue
        d = method.aggregate(jac, _losses(t))
        assert d.shape == (6,) and bool(torch.isfinite(d).all()) and method.last_weights.shape == (t,)
    with pytest.raises(MtlensError, match=r"expected a \[4, P\] matrix"):
        create_method(name, 4).aggregate(_randn(3, 6, 0))  # a given n_tasks is checked
