"""Shared pieces of the gradient-aggregation methods: input checks, the one-task rule, dtypes.

Every aggregator here derives from `Aggregator`, whose `aggregate(jacobian, losses)` checks the Jacobian
(a floating [T, P] matrix with T = n_tasks when fixed, any T >= 1 otherwise; NaN/inf named by task), returns a
lone task's own gradient unchanged (with one task there is nothing to combine, so every method is the
identity), and otherwise calls the method's `_aggregate` and checks that the update is finite.

Dtypes: the update has the Jacobian's dtype. float16 / bfloat16 Jacobians are computed in float32 (their Gram
matrix overflows at gradients of ~100 over 50 coordinates); the small solvers run in float64 on the Gram
matrix of the Jacobian divided by a power of two (exact) whenever its largest entry is far from 1, so
gradients of 1e-30 or 1e30 give the same weights as gradients of 1. Integer Jacobians are refused.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import torch

from mtlens.errors import MtlensError
from mtlens.methods.base import GradientAggregator, Seeded
from mtlens.methods.gradients import shared_gramian
from mtlens.methods.options import Flag

#: The Gram matrix J J^T is used as formed when its largest entry lies within 2^+-k of 1: no entry has over-
#: or underflowed, and rows down to 2^-k of the largest keep their precision. Otherwise J is rescaled first.
_UNSCALED_EXPONENT = {torch.float32: 40, torch.float64: 300}


def check_jacobian(jacobian: torch.Tensor, n_tasks: int | None, name: str) -> torch.Tensor:
    """Returns `jacobian` unchanged, or raises naming the problem (wrong shape or dtype, NaN/inf in a task's row)."""
    rows = "T" if n_tasks is None else str(n_tasks)
    if (
        not isinstance(jacobian, torch.Tensor)
        or jacobian.ndim != 2
        or jacobian.shape[0] < 1
        or (n_tasks is not None and jacobian.shape[0] != n_tasks)
    ):
        shape = tuple(jacobian.shape) if isinstance(jacobian, torch.Tensor) else type(jacobian).__name__
        raise MtlensError(f"{name}: expected a [{rows}, P] matrix of per-task gradients, got {shape}")
    if not jacobian.dtype.is_floating_point:
        raise MtlensError(
            f"{name}: the per-task gradients must be floating point, got {jacobian.dtype}; convert with .float()"
        )
    # A finite row sum proves every entry of the row finite (NaN and inf propagate through a sum), and a sum
    # reads J once without an elementwise mask: 6x less time on a [3, 11M] ResNet Jacobian. Only a row whose
    # sum is not finite (a bad entry, or finite entries that overflow) is checked entry by entry.
    if bool(torch.isfinite(jacobian.sum(dim=1)).all()):
        return jacobian
    bad = ~torch.isfinite(jacobian).all(dim=1)
    if bool(bad.any()):
        t = int(bad.nonzero()[0, 0])
        raise MtlensError(
            f"{name}: the gradient of task {t} contains NaN or inf; check that task's loss and targets"
        )
    return jacobian


def compute_dtype(jacobian: torch.Tensor) -> torch.dtype:
    """Returns the dtype the aggregation runs in: float32 for 16-bit floats, else the Jacobian's own."""
    return jacobian.dtype if jacobian.dtype in (torch.float32, torch.float64) else torch.float32


def gram(jacobian: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Returns (G, s): G the [T, T] Gram matrix of J / s in float64 on the CPU, s a power of two (J J^T = s^2 G).

    The product runs on the Jacobian's device in its compute dtype (the expensive part). s is 1 unless the
    largest squared norm is beyond 2^+-40 (float32) or 2^+-300 (float64): then the product over- or underflowed
    (or would lose small rows) and is formed again from J divided by the power of two nearest its largest
    |entry|. Methods whose weights do not depend on the gradients' scale ignore s.
    """
    work = jacobian.to(compute_dtype(jacobian))
    g = work @ work.T
    limit = _UNSCALED_EXPONENT[work.dtype]
    top = float(g.diagonal().max())
    if math.isfinite(top) and math.ldexp(1.0, -limit) <= top <= math.ldexp(1.0, limit):
        return g.to(device="cpu", dtype=torch.float64), 1.0
    peak = float(work.abs().max())
    if peak == 0.0:  # a zero Jacobian: the Gram matrix is exactly zero
        return torch.zeros(g.shape, dtype=torch.float64), 1.0
    exponent = math.frexp(peak)[1]
    work = work * math.ldexp(1.0, -exponent)
    return (work @ work.T).to(device="cpu", dtype=torch.float64), math.ldexp(1.0, exponent)


def combine(weights: torch.Tensor, jacobian: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Returns sum_t weights[t] * jacobian[t] / scale, on the Jacobian's device in its compute dtype."""
    work = jacobian.to(compute_dtype(jacobian))
    if scale != 1.0:
        work = work * (1.0 / scale)
    return weights.to(device=work.device, dtype=work.dtype) @ work


def finish(direction: torch.Tensor, dtype: torch.dtype, name: str) -> torch.Tensor:
    """Returns the update in the Jacobian's dtype, or raises if it is not finite there (an overflow)."""
    out = direction.to(dtype)
    # a finite sum proves every entry finite (as in check_jacobian): 0.3 ms instead of 40 ms on [1.76M]; only
    # a non-finite sum (a bad entry, or finite entries whose sum overflows) is checked entry by entry
    if not math.isfinite(float(out.sum())) and not bool(torch.isfinite(out).all()):
        raise MtlensError(
            f"{name}: the aggregated update overflows {dtype}; scale the losses down or compute the per-task "
            "gradients in float32"
        )
    return out


class Aggregator(GradientAggregator):
    """A gradient aggregator with the common checks; subclasses implement `_aggregate`."""

    def aggregate(self, jacobian: torch.Tensor, losses: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the update direction [P] for the per-task gradients [T, P] (sets `last_weights`)."""
        check_jacobian(jacobian, self.n_tasks, self.name)
        if losses is not None:
            losses = losses.detach()
            if losses.shape != (jacobian.shape[0],):
                raise MtlensError(
                    f"{self.name}: {jacobian.shape[0]} task gradients but losses of shape {tuple(losses.shape)}"
                )
        if jacobian.shape[0] == 1:
            self.last_weights = torch.ones(1)
            return jacobian[0].clone()
        self.check_rows(jacobian.shape[0])
        direction, weights = self._aggregate(jacobian, losses)
        self.last_weights = weights.detach().to(device="cpu", dtype=torch.float32)
        return finish(direction, jacobian.dtype, self.name)

    def check_rows(self, rows: int) -> None:
        """Raises when `rows` task gradients (more than one) are fewer than the method's definition needs."""
        if rows < self.min_rows:
            raise MtlensError(f"{self.name}: {self.rows_reason()}; got {rows} task gradients")

    def rows_reason(self) -> str:
        """Returns why the method needs `min_rows` task gradients (for the error message)."""
        return f"needs at least {self.min_rows} task gradients"

    @abstractmethod
    def _aggregate(self, jacobian: torch.Tensor, losses: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (the direction [P], the [T] task weights to report) for T >= 2 checked task gradients."""


def scaled_gram(g: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
    """Returns (G / s^2, s) for a Gram matrix formed in `dtype` (float64, CPU), s a power of two as in `gram`.

    The Gram path has no Jacobian to rescale, so G is used as formed unless its largest diagonal entry lies
    outside the range `gram` trusts; it is then divided by the power of two nearest it (exact).
    """
    limit = _UNSCALED_EXPONENT.get(dtype, 40)
    top = float(g.diagonal().max())
    if top == 0.0 or math.ldexp(1.0, -limit) <= top <= math.ldexp(1.0, limit):
        return g, 1.0
    exponent = math.frexp(math.sqrt(top))[1]
    return g * math.ldexp(1.0, -2 * exponent), math.ldexp(1.0, exponent)


class GramAggregator(Aggregator):
    """An aggregator whose update is sum_t w_t g_t with weights that depend on J only through J J^T.

    Subclasses implement `_gram_weights(g, scale, losses)`: the weights w on the raw gradients, given the Gram
    matrix g = J J^T / scale^2 (float64, CPU; `scale` a power of two, 1 unless the gradients are extreme).

    Option `gramian` (default False): at level "param", `backward` forms J J^T without materialising the
    [T, P] Jacobian (`mtlens.methods.gradients.shared_gramian`: one [P] task gradient at a time plus one
    second-order pass per task) and writes sum_t w_t g_t as the gradient of sum_t w_t L_t, one backward pass.
    Memory: O(P) instead of O(T P); time: about three backward passes per task instead of one (see
    benchmarks/bench_gramian.py). At level "feature" the representation's Jacobian is small and is formed as usual.
    """

    weighted = True
    #: False where the weights ignore the gradients (random weights): no Gram matrix is formed at all.
    uses_gram: ClassVar[bool] = True
    #: True where the weights hinge on rank decisions (pseudo-inverses, dependence tests): G is then formed in
    #: float64 from the Jacobian's values, so equal values give equal weights whatever the Jacobian's dtype.
    exact_gram: ClassVar[bool] = False
    option_rules = {"gramian": Flag()}
    gramian: bool

    def __init__(
        self, n_tasks: int | None = None, level: str = "param", batched: bool = True, gramian: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian=gramian, **options)

    @abstractmethod
    def _gram_weights(self, g: torch.Tensor, scale: float, losses: torch.Tensor | None) -> torch.Tensor:
        """Returns the [T] weights on the raw task gradients for the Gram matrix g = J J^T / scale^2 (T >= 2)."""

    def weights_from(self, jacobian: torch.Tensor, losses: torch.Tensor | None) -> tuple[torch.Tensor, float]:
        """Returns (the float64 weights, the scale) for a checked Jacobian (T >= 2)."""
        if self.uses_gram:
            g, scale = gram(jacobian.to(torch.float64) if self.exact_gram else jacobian)
        else:
            g, scale = torch.zeros(jacobian.shape[0], jacobian.shape[0], dtype=torch.float64), 1.0
        return self._gram_weights(g, scale, losses).to(torch.float64), scale

    def _aggregate(self, jacobian, losses):  # type: ignore[no-untyped-def]
        weights, _ = self.weights_from(jacobian, losses)
        return combine(weights, jacobian), weights

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        if not (self.gramian and self.level == "param") or task_params is None:
            return super()._backward(losses, shared, representation, task_params)
        jac_z = self.task_rows(losses, representation, task_params)
        n = losses.shape[0]
        if n == 1:
            weights = torch.ones(1, dtype=torch.float64)
        else:
            self.check_rows(n)
            if self.uses_gram:
                g = shared_gramian(losses, shared, representation, jac_z=jac_z)
                # a non-finite loss spreads NaN through the whole second-order pass: name it first
                bad = ~torch.isfinite(losses.detach().cpu())
                bad = bad if bool(bad.any()) else ~torch.isfinite(g.diagonal())
                if bool(bad.any()):
                    t = int(bad.nonzero()[0, 0])
                    raise MtlensError(
                        f"{self.name}: the gradient of task {t} contains NaN or inf (or overflows); check that "
                        "task's loss and targets"
                    )
                g, scale = scaled_gram(g, losses.dtype)
            else:
                g, scale = torch.zeros(n, n, dtype=torch.float64), 1.0
            weights = self._gram_weights(g, scale, losses.detach()).to(torch.float64)
            if self.uses_gram and not math.isfinite(float(weights @ g @ weights)):
                raise MtlensError(
                    f"{self.name}: the aggregated update overflows; scale the losses down"
                )
        # sum_t w_t g_t is the gradient of sum_t w_t L_t w.r.t. the shared parameters: one backward pass
        torch.autograd.backward(losses, weights.to(losses), inputs=shared)
        self.last_weights = weights.to(torch.float32)
        return self.last_weights


class SeededGramAggregator(Seeded, GramAggregator):
    """A Gram-matrix aggregator with random choices, drawn from its own seeded generator (PCGrad's orders, RGW's
    weights)."""

    def __init__(
        self, n_tasks: int | None = None, level: str = "param", seed: int = 0, batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, seed=seed)
        self._init_rng()
