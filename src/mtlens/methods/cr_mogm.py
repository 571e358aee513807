"""CR-MOGM (Zhou, Zhang, Jiang, Li, Jin & Yin 2022, NeurIPS, "On the Convergence of Stochastic Multi-Objective
Gradient Manipulation and Beyond", §4): stochastic gradient manipulation (MGDA, PCGrad, CAGrad, ...) has
biased weights; smoothing them across steps restores convergence. With lambda^_k the weights the wrapped method
computes at step k,

    lambda_k = alpha lambda_{k-1} + (1 - alpha) lambda^_k,   lambda_0 = lambda^_1,

and the update is sum_t lambda_k,t g_t. `base` names the wrapped method: any Gram-based aggregator whose update
is a weighting of the gradients (mgda, upgrad, pcgrad, cagrad, nash_mtl, ...), with `base_options` its
options; it runs at this method's level and task count. Default base "mgda" (CR-MGDA, the paper's main case),
alpha = 0.9 (TorchJD 0.18's default; the paper's Corollary 1 lets alpha_k grow towards 1 as the learning rate
decays: change `method.alpha` between steps for that schedule). The smoothed weights are on the raw gradients.
Its properties are the base's, except non-conflict (the smoothed weights mix earlier steps').
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import GramAggregator
from mtlens.methods.options import MethodName, OptionMap, Real, check_method_options
from mtlens.methods.registry import METHODS


def _smoothable(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, GramAggregator) and cls.weighted and cls is not CRMOGM


@METHODS.register("cr_mogm", aliases=("crmogm",))
class CRMOGM(GramAggregator):
    """Smooths another method's task weights with an exponential moving average across steps."""

    name = "cr_mogm"
    per_task_state = True
    option_rules = {
        "base": MethodName("a Gram-based gradient method that weights the gradients (e.g. mgda, upgrad, pcgrad)",
                           _smoothable),
        "base_options": OptionMap(),
        "alpha": Real(0.0, 1.0),
    }
    base: str
    base_options: dict[str, Any] | None
    alpha: float

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        base: str = "mgda",
        base_options: Mapping[str, Any] | None = None,
        alpha: float = 0.9,
        batched: bool = True,
        gramian: bool = False,
    ) -> None:
        super().__init__(n_tasks, level, batched, gramian, base=base, base_options=base_options, alpha=alpha)
        self.inner: GramAggregator = METHODS.create(self.base, self.n_tasks, level, **(self.base_options or {}))
        self.uses_gram = self.inner.uses_gram  # type: ignore[misc]
        inner = type(self.inner)
        self.claims = inner.claims - {"non_conflicting"}  # type: ignore[misc]
        reason = "the smoothed weights mix earlier steps' weights, which need not avoid this step's conflicts"
        self.exemptions = {**inner.exemptions, "non_conflicting": reason}  # type: ignore[misc]
        #: The smoothed weights lambda_{k-1} on the raw gradients (None before the first step).
        self.smoothed: torch.Tensor | None = None

    @classmethod
    def check_combination(cls, n_tasks: int | None, level: str, options: Mapping[str, Any]) -> None:
        """Checks the base method's own options, level and task count, as creating it would."""
        base = options.get("base", "mgda")
        try:
            check_method_options(base, n_tasks, level, options.get("base_options") or {})
        except MtlensError as err:
            raise MtlensError(f"cr_mogm: base {base}: {err}") from None

    def _move(self, device: torch.device) -> None:
        self.inner.to(device)

    def _gram_weights(self, g, scale, losses):  # type: ignore[no-untyped-def]
        self.inner.step = self.step  # schedules in the base (Nash-MTL's) count this method's steps
        fresh = self.inner._gram_weights(g, scale, losses).to(torch.float64)
        previous = fresh if self.smoothed is None or self.smoothed.shape != fresh.shape else self.smoothed
        self.smoothed = self.alpha * previous + (1.0 - self.alpha) * fresh
        return self.smoothed.clone()

    def state_dict(self) -> dict[str, Any]:
        """Returns the step, the smoothed weights and the base method's state."""
        return {**super().state_dict(), "smoothed": self.smoothed, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict`."""
        super().load_state_dict(state)
        self.smoothed = state["smoothed"]
        self.inner.load_state_dict(state["inner"])
