"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018, "GradNorm: Gradient Normalization for Adaptive
Loss Balancing in Deep Multitask Networks", Algorithm 1).

Learnable weights w_t (initialised 1). Each step:

* G_t = ||grad_W (w_t L_t)||_2,  Gbar = mean_t G_t;
* r_t = Ltilde_t / mean_j Ltilde_j with Ltilde_t = L_t / L_t(0), L_t(0) the losses of the first step;
* L_grad = sum_t | G_t - [Gbar r_t^alpha] |, the bracket held constant; L_grad is differentiated w.r.t. w
  only (its gradient goes to `w.grad`), the network gets the gradient of sum_t w_t L_t (w held constant);
* after the optimiser has moved w, the weights are renormalised to sum to T. We renormalise at the start
  of the next step, before w is used, which gives the same weights. Weights are kept >= 1e-8 first, so
  a too-large step on w cannot make them negative (the paper does not say what happens then).

Levels (where W is):
* "param": the paper's "last shared layer": the last tensor of `shared_params` with >= 2 dimensions (the
  last layer's weight matrix or kernel; biases are skipped), or the last tensor when all are 1-D.
* "feature": the shared representation z (the whole [N, ...] batch tensor flattened into one vector).

alpha = 1.5 (the paper's NYUv2 value).

LibMTL 1.1.5 (`weighting/GradNorm.py`) differs: its weights are T softmax(logits) instead of renormalised w;
it takes norms over all shared parameters (or, at feature level, of the representation gradient summed over
the batch); it uses equal weights during the first epoch and takes L(0) as that epoch's average loss.
With the same W, the same L(0) and w = 1, its first-step L_grad and the network gradient equal ours.
"""

from __future__ import annotations

import torch

from mtlens.errors import MtlensError
from mtlens.methods.gradients import task_jacobian
from mtlens.methods.options import PerTask, Real
from mtlens.methods.registry import METHODS
from mtlens.methods.weighting_common import LearnableWeighting, require_finite

_MIN_WEIGHT = 1e-8


def last_layer_params(shared: list[torch.Tensor]) -> list[torch.Tensor]:
    """Returns [the last tensor of `shared` with >= 2 dims] (or [the last tensor] when all are 1-D)."""
    if not shared:
        raise MtlensError("gradnorm: no shared parameter requires grad; pass the encoder's parameters")
    for p in reversed(shared):
        if p.ndim >= 2:
            return [p]
    return [shared[-1]]


@METHODS.register("gradnorm", aliases=("grad_norm",))
class GradNorm(LearnableWeighting):
    """Weights learned so that the weighted gradient norms follow the tasks' relative training rates."""

    name = "gradnorm"
    uses_gradients = True
    state_keys = ("loss_weights", "initial_losses")
    option_rules = {"alpha": Real(0.0), "initial_losses": PerTask(0.0, low_open=True, optional=True)}
    alpha: float

    def __init__(
        self,
        n_tasks: int | None = None,
        level: str = "param",
        alpha: float = 1.5,
        initial_losses: torch.Tensor | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(n_tasks, level, alpha=alpha, initial_losses=initial_losses, device=device)
        n_tasks = self.n_tasks
        self.loss_weights = self._learnable(torch.ones(n_tasks))  # type: ignore[arg-type]
        #: L_t(0); taken from the first step unless given (checked positive by the option rule).
        given = self.options["initial_losses"]
        self.initial_losses = torch.zeros(n_tasks) if given is None else given.float()  # type: ignore[arg-type]
        #: The relative inverse training rates r_t and the norms G_t of the last step (for logging).
        self.last_rates = torch.ones(n_tasks)  # type: ignore[arg-type]
        self.last_norms = torch.zeros(n_tasks)  # type: ignore[arg-type]

    def parameters(self) -> list[torch.Tensor]:
        """Returns [w], the learnable task weights."""
        return [self.loss_weights]

    def _check_initial(self, init: torch.Tensor) -> None:
        bad = (~torch.isfinite(init)) | (init <= 0)
        if bool(bad.any()):
            t = int(bad.nonzero()[0, 0])
            raise MtlensError(
                f"gradnorm: the initial loss of task {t} is {float(init[t])}, so its training rate L/L(0) is "
                f"undefined; pass initial_losses= with positive values (e.g. the losses of an untrained model)"
            )

    def renormalise(self) -> None:
        """Clamps the weights to >= 1e-8 and rescales them in place to sum to T."""
        with torch.no_grad():
            w = self.loss_weights.clamp_(min=_MIN_WEIGHT)
            w.mul_(self.n_tasks / w.sum())

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the current weights w [T] (detached; renormalised to sum T at each step)."""
        return self.loss_weights.detach().clone()

    def rates(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns r_t = Ltilde_t / mean_j Ltilde_j with Ltilde_t = L_t / L_t(0)."""
        ltilde = losses.detach().float().cpu() / self.initial_losses
        return ltilde / ltilde.mean()

    def grad_loss(self, norms: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
        """Returns L_grad = sum_t |w_t n_t - mean(w n) r_t^alpha| as a function of w (target held constant).

        `norms` are the unweighted gradient norms n_t = ||grad_W L_t||, so G_t = w_t n_t (w_t > 0).
        """
        g = self.loss_weights * norms.to(self.loss_weights)
        target = (g.mean() * rates.to(g) ** self.alpha).detach()
        return (g - target).abs().sum()

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        require_finite(losses, self.name)
        self._check_device(losses)
        if self.step == 0 and not bool((self.initial_losses > 0).all()):
            init = losses.detach().float().cpu()
            self._check_initial(init)
            self.initial_losses = init.clone()
        self.renormalise()
        inputs = [representation] if self.level == "feature" else last_layer_params(shared)
        jac = task_jacobian(losses, inputs)
        norms = jac.norm(dim=1).detach()
        rates = self.rates(losses)
        (grad_w,) = torch.autograd.grad(self.grad_loss(norms, rates), [self.loss_weights])
        w = self.loss_weights
        w.grad = grad_w if w.grad is None else w.grad + grad_w
        self.last_rates, self.last_norms = rates, (w.detach() * norms).cpu()
        weights = w.detach().clone()
        (weights.to(losses) * losses).sum().backward()
        return weights
