"""Loss scalarisations: the step backpropagates one scalar S(L_1, ..., L_T) of the task losses, and the weights
reported are dS/dL_t (the gradient is sum_t dS/dL_t grad L_t). Each is a plain function of this step's losses:

- mean: S = sum_t L_t / T (TorchJD 0.18's Mean aggregator and scalarizer; `ew` is their Sum).
- constant: S = sum_t c_t L_t with fixed `coefficients` c (default ones; TorchJD's Constant aggregator and
  scalarizer, whose `weights` they are).
- gls, geometric loss strategy (Chennupati et al. 2019, "MultiNet++", CVPRW, eq. 3): S = (prod_t L_t)^(1/T),
  computed as exp(mean log L) (LibMTL 1.1.5 forms the product, which under- or overflows with many tasks);
  the losses must be positive.
- pbi, penalty-based boundary intersection (Zhang & Li 2007, "MOEA/D", §2.3): with w^ = w / |w| the preference
  direction and z the reference point, d1 = <L - z, w^>, d2 = |L - z - d1 w^| and S = d1 + theta d2. theta = 5
  (the paper's experiments), w uniform, z = 0 by default; 1e-12 under the square root keeps the gradient finite
  where d2 = 0 (as TorchJD 0.18; a shift of at most 1e-6).
- cosmos, the COSMOS objective (Ruchte & Grabocka 2021, "Scalable Pareto Front Approximation for Deep
  Multi-Objective Learning", eq. 4) at one preference r: S = <r, L> - lambda cos(r, L), lambda = 2 (the
  authors' default, settings.py), r uniform. COSMOS itself also conditions the model on r (r is appended to
  the input) and draws a new r from a Dirichlet distribution every batch, so that one network learns the
  whole Pareto front. That part changes the model's input, which a method never sees (it receives losses
  after the forward pass), so it does not fit the method contract: here r is fixed, which trains the single
  trade-off r with COSMOS's cosine penalty. A conditioned model belongs in mtlens.models.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mtlens.errors import MtlensError
from mtlens.methods.base import LossWeighting
from mtlens.methods.options import PerTask, Real
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import require_finite

_PBI_EPS = 1e-12


class Scalarization(LossWeighting):
    """A loss weighting that backpropagates S(L); subclasses implement `objective`."""

    @abstractmethod
    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the scalar S(L) for the [T] losses (differentiable)."""

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns dS/dL [T] at these losses."""
        with torch.enable_grad():
            probe = losses.detach().clone().requires_grad_(True)
            (slopes,) = torch.autograd.grad(self.objective(probe), probe)
        return slopes

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (S(L), dS/dL)."""
        require_finite(losses, self.name)
        return self.objective(losses), self.weights(losses)

    def _per_task(self, value: torch.Tensor | None, losses: torch.Tensor, default: float) -> torch.Tensor:
        n = losses.shape[0]
        if value is None:
            return torch.full((n,), default, dtype=losses.dtype, device=losses.device)
        return value.to(dtype=losses.dtype, device=losses.device)


@METHODS.register("mean", aliases=("mean_weighting",))
class Mean(Scalarization):
    """The mean of the task losses: equal weights 1/T."""

    name = "mean"

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        return losses.mean()


@METHODS.register("constant", aliases=("linear_scalarization", "ls"))
class Constant(Scalarization):
    """A fixed linear combination sum_t c_t L_t."""

    name = "constant"
    option_rules = {"coefficients": PerTask(optional=True)}
    coefficients: torch.Tensor | None

    def __init__(self, n_tasks: int | None = None, level: str = "param",
                 coefficients: Sequence[float] | None = None) -> None:
        super().__init__(n_tasks, level, coefficients=coefficients)

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        return (self._per_task(self.coefficients, losses, 1.0) * losses).sum()


@METHODS.register("gls", aliases=("geometric_mean", "geometric_loss"))
class GLS(Scalarization):
    """The geometric mean of the task losses."""

    name = "gls"

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        bad = ~(losses.detach() > 0)
        if bool(bad.any()):
            t = int(bad.nonzero()[0, 0])
            raise MtlensError(f"gls: the loss of task {t} is {float(losses.detach()[t])}; the geometric mean needs "
                              "positive losses")
        return losses.log().mean().exp()


@METHODS.register("pbi", aliases=("penalty_boundary_intersection",))
class PBI(Scalarization):
    """Distance along the preference direction plus theta times the distance to it."""

    name = "pbi"
    option_rules = {"theta": Real(0.0), "preference": PerTask(0.0, optional=True), "reference": PerTask(optional=True)}
    theta: float
    preference: torch.Tensor | None
    reference: torch.Tensor | None

    def __init__(self, n_tasks: int | None = None, level: str = "param", theta: float = 5.0,
                 preference: Sequence[float] | None = None, reference: Sequence[float] | None = None) -> None:
        super().__init__(n_tasks, level, theta=theta, preference=preference, reference=reference)

    @classmethod
    def check_combination(cls, n_tasks: int | None, level: str, options: Mapping[str, Any]) -> None:
        """Refuses a preference with no positive entry (it has no direction)."""
        pref = options.get("preference")
        if pref is not None and not bool((pref > 0).any()):
            raise MtlensError("pbi: preference must have a positive entry (it is the direction of the trade-off)")

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        direction = self._per_task(self.preference, losses, 1.0)
        direction = direction / direction.norm()
        shifted = losses - self._per_task(self.reference, losses, 0.0)
        along = shifted @ direction
        across = shifted - along * direction
        return along + self.theta * (across @ across + _PBI_EPS).sqrt()


@METHODS.register("cosmos")
class COSMOS(Scalarization):
    """The preference-weighted loss minus lambda times its cosine with the preference (one fixed preference)."""

    name = "cosmos"
    option_rules = {"lambda_": Real(0.0), "preference": PerTask(0.0, optional=True)}
    lambda_: float
    preference: torch.Tensor | None

    def __init__(self, n_tasks: int | None = None, level: str = "param", lambda_: float = 2.0,
                 preference: Sequence[float] | None = None) -> None:
        super().__init__(n_tasks, level, lambda_=lambda_, preference=preference)

    @classmethod
    def check_combination(cls, n_tasks: int | None, level: str, options: Mapping[str, Any]) -> None:
        """Refuses a preference with no positive entry (the cosine is undefined)."""
        pref = options.get("preference")
        if pref is not None and not bool((pref > 0).any()):
            raise MtlensError("cosmos: preference must have a positive entry (a ray of the simplex)")

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        ray = self._per_task(self.preference, losses, 1.0 / losses.shape[0])
        return (ray * losses).sum() - self.lambda_ * F.cosine_similarity(ray, losses, dim=0)
