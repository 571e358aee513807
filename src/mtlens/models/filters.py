"""Information filters (seed 001 §III): a deterministic shared code Z = f(X) and per task W_j = Z + N_j.

N_j ~ N(0, diag sigma_j^2) with a learned log-variance vector per task (eq. 1), drawn by reparameterisation;
linear task heads read W_j (Table II). The compression term is the variational bound of eqs. 7-8 against
q_j = N(0, diag xi_j^2), with learned prior log-variances xi_j and the prior mean frozen at 0 (§III-D):

    KL_j(x) = 1/2 sum_i [ log xi_ji^2 - log sigma_ji^2 + (sigma_ji^2 + f(x)_i^2) / xi_ji^2 - 1 ].

Eq. 8 as printed drops the 1/2 on the log-ratio; the Gaussian KL (and the authors' code,
`kl_mvn_diag_mvn_diag`) has it, and that is what is computed here (`filter_kl`).

Objective and reduction. Task j's loss is L_j = CE_j + beta_j KL_j, each term the MEAN over the batch, so the
total sum_j L_j is seed 001's eq. 2 bound. The authors' code sums both terms over the batch; the two
differ by the constant factor B, so beta keeps the authors' meaning (the per-sample ratio of the two terms)
and Adam, invariant to a constant loss scale, follows the same path. The one exception is uncertainty
weighting: see `TaskUncertainty`.

Ablations (seed 001 Tables III-V): `noise="none"` (W_j = Z, Table IV's "-" row), `beta=0` with learned
noise (row "0"), and `noise="fixed"` with sigma^2 = e for the two-stage procedure of §V "Ablation
Analysis": train encoder and heads, then `learn_variances()` freezes the encoder and makes the variances
trainable, and the heads are trained on jointly with them.

Evaluation noise (`eval_noise`): "sample" (default: seed 001 §III-D uses one posterior sample at train AND
test time, as does the authors' code) or "mean" (W_j = Z, its conditional mean). Sampled evaluations draw
from a generator reseeded (`eval_seed`) each time the model enters eval mode, so an evaluation is
reproducible and never touches the training random stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.batched_heads import BatchedHeads, BatchedTaskLoss
from mtlens.models.filter_encoders import TABLE2_HIDDEN, filter_encoder
from mtlens.models.hard_sharing import MultiTaskModel
from mtlens.models.registry import MODELS

NOISE_MODES = ("learned", "fixed", "none")
EVAL_NOISE = ("sample", "mean")
DEFAULT_BETA = 0.1  # seed 001 §V-B: "Unless noted otherwise, all experiments used beta = 0.1"
INIT_STD = 0.01  # seed 001 §V: noise variances (log-variances in the authors' code) initialised N(0, 0.01^2)
FIXED_LOG_VAR = 1.0  # seed 001 §V "Ablation Analysis": sigma^2 = e


def filter_kl(z: torch.Tensor, noise_log_var: torch.Tensor, prior_log_var: torch.Tensor) -> torch.Tensor:
    """Returns [T]: per task the batch mean of KL(N(z, diag e^s_j) || N(0, diag e^xi_j)), summed over the d dims.

    z [N, d]; noise_log_var s and prior_log_var xi [T, d]. The mean of the z^2 term over the batch is taken
    once, so the cost is one pass over z plus O(T d).
    """
    z_sq = (z * z).mean(0)
    ratio = (noise_log_var.exp() + z_sq) * torch.exp(-prior_log_var)
    return 0.5 * (ratio + prior_log_var - noise_log_var).sum(1) - 0.5 * z.shape[1]


def check_beta(beta: float | Sequence[float], n_tasks: int, who: str) -> torch.Tensor:
    """Returns beta as a [T] float tensor, or raises if it is negative, non-finite or of the wrong length."""
    values = np.atleast_1d(np.asarray(beta, dtype=np.float64)) if not isinstance(beta, bool) else np.array([np.nan])
    if values.ndim != 1 or len(values) not in (1, n_tasks):
        raise MtlensError(f"{who}: beta must be one number or one per task ({n_tasks}), got {beta!r}")
    bad = [float(v) for v in values if not np.isfinite(v) or v < 0]
    if bad:
        raise MtlensError(f"{who}: beta must be finite and >= 0, got {bad[0]}")
    return torch.as_tensor(np.broadcast_to(values, (n_tasks,)).copy(), dtype=torch.float32)


class TaskUncertainty(nn.Module):
    """Uncertainty weighting as the authors' switch (`with_weights`) does it: exp(-w_j) CE_j + w_j / 2.

    Kendall et al. (CVPR 2018)'s classification form with w_j = log sigma_j^2 learnable (initialised at 0),
    applied to the prediction term only -- the KL is added unweighted. The `uncertainty` method of
    mtlens.methods (0.5 exp(-s) L + s / 2) is the same weighting up to the shift s = w - log 2 (pass
    init_log_var=-log 2 for the same start) but weights the whole task loss, KL included. And the authors sum
    the CE over the batch: at the learned optimum exp(-w) CE_sum is about 1/2 whatever the batch size B, while
    their KL term stays beta KL_sum = B beta KL_mean -- under uncertainty weighting their beta is worth B beta
    in this module's mean convention.
    """

    def __init__(self, n_tasks: int) -> None:
        super().__init__()
        self.log_var = nn.Parameter(torch.zeros(n_tasks))

    def forward(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the weighted per-task terms [T]: exp(-w) * losses + w / 2."""
        return torch.exp(-self.log_var) * losses + 0.5 * self.log_var


class FilterModel(MultiTaskModel):
    """Seed 001's hierarchical model: Z = f(X), W_j = Z + N_j, a head per task on W_j (see the module doc)."""

    architecture = "filters"

    def __init__(self, encoder: nn.Module, tasks: Sequence[TaskSpec], latent_dim: int, *, noise: str = "learned",
                 beta: float | Sequence[float] | None = None, eval_noise: str = "sample", uncertainty: bool = False,
                 init_std: float = INIT_STD, fixed_log_var: float = FIXED_LOG_VAR, head_hidden: Sequence[int] = (),
                 head_dropout: float = 0.0, head_activation: str = "relu", eval_seed: int = 0,
                 active_tasks: Sequence[int] | None = None) -> None:
        super().__init__(encoder, tasks, active_tasks)
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
            raise MtlensError(f"filters: latent_dim (d) must be an integer >= 1, got {latent_dim!r}")
        if noise not in NOISE_MODES:
            raise MtlensError(f"filters: unknown noise {noise!r}; choose one of {', '.join(NOISE_MODES)}")
        if noise == "none" and beta is not None and np.any(np.asarray(beta, dtype=np.float64) != 0):
            raise MtlensError(f"filters: noise='none' has no KL term; beta={beta!r} would do nothing, pass beta=0")
        if not (np.isfinite(init_std) and init_std >= 0) or not np.isfinite(fixed_log_var):
            raise MtlensError(f"filters: init_std must be finite and >= 0 and fixed_log_var finite, got {init_std}, {fixed_log_var}")
        n, d = len(self.tasks), int(latent_dim)
        self.latent_dim, self.noise = d, noise
        self.register_buffer("beta", check_beta(DEFAULT_BETA if beta is None else beta, n, "filters"))
        # log_vars[0] = log sigma_j^2 (noise), log_vars[1] = log xi_j^2 (prior): one parameter, not two, because
        # a CPU step of this small model is bound by per-op overhead, and Adam's costs ~40 ops per parameter
        self.log_vars: nn.Parameter | None = None
        if noise == "none":
            self.beta.zero_()
        else:
            start = torch.full((n, d), float(fixed_log_var)) if noise == "fixed" else init_std * torch.randn(n, d)
            self.log_vars = nn.Parameter(torch.stack([start, init_std * torch.randn(n, d)]))
        #: fixed noise before `learn_variances()`: the noise row gets no gradient (Adam then leaves it exactly)
        self.noise_frozen = noise == "fixed"
        self.heads = BatchedHeads(self.tasks, d, head_hidden, head_activation, head_dropout)
        self.uncertainty = TaskUncertainty(n) if uncertainty else None
        self._loss = BatchedTaskLoss(self.tasks)
        self.eval_noise = eval_noise
        self.eval_seed = int(eval_seed)
        self._eval_generators: dict[str, torch.Generator] = {}
        self._all_active = self.active_tasks == tuple(range(n))

    # ------------------------------------------------------------------ options
    @property
    def eval_noise(self) -> str:
        """How predictions outside training treat the noise: "sample" (one draw) or "mean" (W_j = Z)."""
        return self._eval_noise

    @eval_noise.setter
    def eval_noise(self, value: str) -> None:
        if value not in EVAL_NOISE:
            raise MtlensError(f"filters: unknown eval_noise {value!r}; choose one of {', '.join(EVAL_NOISE)}")
        self._eval_noise = value

    @property
    def noise_log_var(self) -> torch.Tensor | None:
        """The noise log-variances log sigma^2 [T, d] (a view of `log_vars`), None without noise."""
        return None if self.log_vars is None else self.log_vars[0]

    @property
    def prior_log_var(self) -> torch.Tensor | None:
        """The prior log-variances log xi^2 [T, d] (a view of `log_vars`), None without noise."""
        return None if self.log_vars is None else self.log_vars[1]

    def learn_variances(self) -> None:
        """Second stage of seed 001's fixed-noise ablation: freeze the encoder, make the noise variances trainable.

        Build a new optimiser (a new Trainer) afterwards: the parameters to train have changed.
        """
        if self.log_vars is None:
            raise MtlensError("filters: noise='none' has no variances to learn; use noise='fixed' or 'learned'")
        self.encoder.requires_grad_(False)
        self.noise_frozen = False

    def log_variances(self) -> torch.Tensor:
        """Returns the noise log-variances log sigma^2 [T, d] (detached, on the CPU): the input of eq. 11."""
        if self.log_vars is None:
            raise MtlensError("filters: noise='none' has no noise log-variances")
        return self.log_vars[0].detach().cpu().clone()

    def _variances(self) -> tuple[torch.Tensor, torch.Tensor]:
        noise, prior = self.log_vars.unbind(0)  # type: ignore[union-attr]
        return (noise.detach() if self.noise_frozen else noise), prior

    # ------------------------------------------------------------------ the model
    def train(self, mode: bool = True) -> "FilterModel":
        if not mode:
            self._eval_generators = {}  # each evaluation pass draws the same noise: reproducible, stream untouched
        return super().train(mode)

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._eval_generators:
            self._eval_generators[key] = torch.Generator(device=device).manual_seed(self.eval_seed)
        return self._eval_generators[key]

    def filtered(self, z: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Returns the task representations W [T, N, d]: Z plus one draw of each task's noise, or Z itself."""
        n_tasks = len(self.tasks)
        if self.log_vars is None or not sample:
            return z.unsqueeze(0).expand(n_tasks, *z.shape)
        eps = torch.randn((n_tasks, *z.shape), generator=generator, device=z.device, dtype=z.dtype)
        return torch.addcmul(z, torch.exp(0.5 * self._variances()[0]).unsqueeze(1), eps)

    def kl(self, z: torch.Tensor) -> torch.Tensor:
        """Returns the [T] batch-mean KL terms of eq. 8 (zeros without noise)."""
        if self.log_vars is None:
            return z.new_zeros(len(self.tasks))
        return filter_kl(z, *self._variances())

    def objective(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Returns the parts of a training step for all T tasks: "z", "ce" [T], "kl" [T] and "loss" [T]."""
        z = self.encode(batch["x"])
        if self.log_vars is None:
            ce = self._loss(self.heads(self.filtered(z)), batch["targets"])
            kl = z.new_zeros(len(self.tasks))
            return {"z": z, "ce": ce, "kl": kl, "loss": ce if self.uncertainty is None else self.uncertainty(ce)}
        noise, prior = self._variances()
        # filtered() and filter_kl() inlined around one exp(s): the step is overhead-bound on a CPU
        var = noise.exp()
        eps = torch.randn((len(self.tasks), *z.shape), device=z.device, dtype=z.dtype)
        ce = self._loss(self.heads(torch.addcmul(z, var.sqrt().unsqueeze(1), eps)), batch["targets"])
        kl = 0.5 * ((var + (z * z).mean(0)) * torch.exp(-prior) + prior - noise).sum(1) - 0.5 * z.shape[1]
        data = ce if self.uncertainty is None else self.uncertainty(ce)
        return {"z": z, "ce": ce, "kl": kl, "loss": torch.addcmul(data, self.beta.to(kl.dtype), kl)}

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (L_j = CE_j + beta_j KL_j for the active tasks, the shared code Z they depend on).

        Every path from the encoder to a loss runs through Z (the heads through W_j = Z + N_j, the KL
        through its z^2 term), so the feature-level methods and the chained Jacobians see the whole objective.
        """
        parts = self.objective(batch)
        losses = parts["loss"] if self._all_active else parts["loss"][list(self.active_tasks)]
        return losses, parts["z"]

    def heads_forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {task: prediction}: noise sampled in training; in eval mode as `eval_noise` says."""
        if self.training:
            w = self.filtered(z, sample=True)
        else:
            sample = self.eval_noise == "sample"
            w = self.filtered(z, sample=sample, generator=self._generator(z.device) if sample else None)
        return self.heads.predictions(self.tasks, self.heads(w))


@MODELS.register("filters", aliases=("information_filters", "filter"))
def filters(tasks: Sequence[TaskSpec], input_shape: Sequence[int], latent_dim: int = 4, noise: str = "learned",
            beta: float | Sequence[float] | None = None, eval_noise: str = "sample", uncertainty: bool = False,
            encoder: str = "auto", encoder_hidden: Sequence[int] = TABLE2_HIDDEN, head_hidden: Sequence[int] = (),
            head_dropout: float = 0.0, init_std: float = INIT_STD, fixed_log_var: float = FIXED_LOG_VAR,
            eval_seed: int = 0) -> FilterModel:
    """Returns seed 001's filter model: Table II MLP (or Table I AlexNet for 63+ px images), d = 4, beta = 0.1."""
    enc = filter_encoder(input_shape, latent_dim, encoder, encoder_hidden)
    return FilterModel(enc, tasks, latent_dim, noise=noise, beta=beta, eval_noise=eval_noise, uncertainty=uncertainty,
                       init_std=init_std, fixed_log_var=fixed_log_var, head_hidden=head_hidden,
                       head_dropout=head_dropout, eval_seed=eval_seed)
