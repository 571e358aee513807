"""Auto-encoders as representation learners (seed 000 §3.2.2, §4.3, App. C.3): AE, (beta-)VAE and FactorVAE.

All three use the Table 2 conv encoder and decoder, latent size 8 and, per App. C.3, tanh non-linearities;
the remaining settings follow the seed's reference implementation (Abdi et al. 2019, disentanglement-pytorch):
the decoder's logits squashed by a sigmoid, a Bernoulli reconstruction term (binary cross-entropy summed over
pixels, averaged over the batch), the KL to N(0, I) summed over latent dimensions (weight beta = 1: the plain
VAE of the seed's Table 1), and FactorVAE's total-correlation term gamma * E[D_0(z) - D_1(z)] from a
discriminator of 6 dense layers of 1000 units with LeakyReLU(0.2) (Kim & Mnih 2018), trained to tell codes
from codes whose dimensions were permuted independently across the batch. gamma defaults to the reference's
w_tc = 1 (Kim & Mnih use 35 on dSprites).

Each model is a MultiTaskModel whose "tasks" are the terms of its objective (reconstruction, kl, tc,
discriminator), so `step_losses` returns them and the Trainer with equal weighting ("ew": their sum) trains
the model, logs each term, checkpoints and resumes it. The discriminator's loss reaches only the
discriminator (codes detached) and the tc term only the encoder (discriminator weights detached), so one Adam
over all parameters is the reference's two Adams (same learning rate and betas). One deviation: the permuted
codes come from the step's own batch (the reference encodes a second batch for them).

`encode(x)` is the deterministic code the representation studies read: the AE's code, the VAE's mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.decoders import IMAGE_SIZE, ConvDecoder
from mtlens.models.encoders import ConvEncoder
from mtlens.models.hard_sharing import MultiTaskModel
from mtlens.models.registry import MODELS

RECONSTRUCTION = TaskSpec("reconstruction", "regression")
KL = TaskSpec("kl", "regression")
TC = TaskSpec("tc", "regression")
DISCRIMINATOR = TaskSpec("discriminator", "regression")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Returns KL(N(mu, exp(logvar)) || N(0, I)) per sample [N], summed over the latent dimensions."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Returns a sample mu + exp(logvar / 2) * eps, eps ~ N(0, I) drawn from `generator` (else the global RNG)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Returns z [N, d] with each column permuted independently across the batch (FactorVAE's sampler).

    Each dimension keeps its values (its marginal), while the dependence between dimensions is broken: the rows
    are samples of the product of the marginals.
    """
    if z.ndim != 2:
        raise MtlensError(f"permute_dims expects codes [N, d], got shape {tuple(z.shape)}")
    n, d = z.shape
    keys = torch.rand((n, d), generator=generator, device=generator.device if generator is not None else z.device)
    order = keys.argsort(dim=0).to(z.device)
    return torch.gather(z, 0, order)


def bernoulli_reconstruction(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Returns the binary cross-entropy of images x under the decoder's logits, summed over pixels, batch mean."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


class Discriminator(nn.Module):
    """FactorVAE's discriminator: `layers` dense layers (1000 units, LeakyReLU 0.2) to 2 logits (true, permuted)."""

    def __init__(self, latent_dim: int, layers: int = 6, width: int = 1000) -> None:
        super().__init__()
        if layers < 2:
            raise MtlensError(f"the discriminator needs at least 2 layers, got {layers}")
        widths = (latent_dim, *([width] * (layers - 1)))
        mods: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            mods += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        mods.append(nn.Linear(widths[-1], 2))
        self.net = nn.Sequential(*mods)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)  # the reference's init_layers for dense layers

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Returns the logits [N, 2] of (true codes, permuted codes)."""
        return self.net(z)


def _check_image_shape(kind: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise MtlensError(f"auto-encoder {kind!r} takes images (C, {IMAGE_SIZE}, {IMAGE_SIZE}) (Table 2), got input shape {shape}")
    return shape  # type: ignore[return-value]


class AutoEncoderModel(MultiTaskModel):
    """An encoder and a Table-2 decoder trained on their images; the "tasks" are the terms of the objective."""

    architecture = "autoencoder"

    def __init__(self, encoder: nn.Module, decoder: ConvDecoder, terms: Sequence[TaskSpec], latent_dim: int) -> None:
        super().__init__(encoder, terms)
        self.decoder = decoder
        self.latent_dim = latent_dim

    # -- what the representation studies read
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the deterministic codes [N, latent_dim] (the VAE's posterior mean)."""
        return self.encoder(x)[:, : self.latent_dim]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Returns images [N, C, 64, 64] in [0, 1] decoded from codes [N, latent_dim]."""
        return self.decoder.decode(z)

    def heads_forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {"reconstruction": the decoded images}: the only term with a prediction."""
        return {RECONSTRUCTION.name: self.decode(z)}

    # -- the objective
    def objective_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Returns ({term: its value as it enters the objective's sum}, the encoder's output)."""
        h = self.encoder(x)
        return {RECONSTRUCTION.name: bernoulli_reconstruction(self.decoder(h), x)}, h

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (the objective's terms [T], the encoder's output: every term reaches the encoder through it)."""
        terms, h = self.objective_terms(batch["x"])
        return torch.stack([terms[t.name] for t in self.tasks]), h

    def test_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns per term a per-sample test value [N] of the deterministic model (no sampling)."""
        return {}

    def score_batch(self, batch: Mapping[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        """Returns the reconstruction's summed squared error per pixel and the other terms' per-sample sums."""
        x = batch["x"]
        n = int(x.shape[0])
        recon = self.decode(self.encode(x))
        out = {RECONSTRUCTION.name: (((recon - x) ** 2).sum(), x.numel())}
        out.update({name: (value.sum(), n) for name, value in self.test_terms(x).items()})
        return out


class AutoEncoder(AutoEncoderModel):
    """A plain auto-encoder: the reconstruction term only."""

    architecture = "ae"

    def __init__(self, in_channels: int = 1, latent_dim: int = 8, activation_name: str = "tanh") -> None:
        super().__init__(ConvEncoder(in_channels, latent_dim, activation_name),
                         ConvDecoder(in_channels, latent_dim, activation_name), (RECONSTRUCTION,), latent_dim)


class VAE(AutoEncoderModel):
    """A (beta-)VAE: reconstruction of a posterior sample plus beta * KL to N(0, I); `encode` gives the mean."""

    architecture = "vae"

    def __init__(self, in_channels: int = 1, latent_dim: int = 8, activation_name: str = "tanh", beta: float = 1.0,
                 terms: Sequence[TaskSpec] = (RECONSTRUCTION, KL)) -> None:
        if not beta >= 0:
            raise MtlensError(f"beta must be >= 0, got {beta}")
        # The encoder's dense layer gives [mu, log-variance].
        super().__init__(ConvEncoder(in_channels, 2 * latent_dim, activation_name),
                         ConvDecoder(in_channels, latent_dim, activation_name), terms, latent_dim)
        self.beta = float(beta)

    def posterior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (mean, log-variance) [N, latent_dim] each, from the encoder's output."""
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def _sampled(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        mu, logvar = self.posterior(h)
        z = reparameterize(mu, logvar)
        terms = {RECONSTRUCTION.name: bernoulli_reconstruction(self.decoder(z), x),
                 KL.name: self.beta * gaussian_kl(mu, logvar).mean()}
        return terms, h, z

    def objective_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        terms, h, _ = self._sampled(x)
        return terms, h

    def test_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns the KL per sample (unweighted by beta)."""
        return {KL.name: gaussian_kl(*self.posterior(self.encoder(x)))}


class FactorVAE(VAE):
    """FactorVAE (Kim & Mnih 2018): the VAE plus gamma * (a discriminator's estimate of the total correlation)."""

    architecture = "factor_vae"

    def __init__(self, in_channels: int = 1, latent_dim: int = 8, activation_name: str = "tanh", gamma: float = 1.0,
                 beta: float = 1.0, discriminator_layers: int = 6, discriminator_width: int = 1000) -> None:
        if not gamma >= 0:
            raise MtlensError(f"gamma must be >= 0, got {gamma}")
        super().__init__(in_channels, latent_dim, activation_name, beta, terms=(RECONSTRUCTION, KL, TC, DISCRIMINATOR))
        self.gamma = float(gamma)
        self.discriminator = Discriminator(latent_dim, discriminator_layers, discriminator_width)

    def _tc_estimate(self, z: torch.Tensor) -> torch.Tensor:
        # The discriminator's weights detached: this term trains the encoder, never the discriminator.
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        logits = torch.func.functional_call(self.discriminator, frozen, (z,))
        return logits[:, 0] - logits[:, 1]

    def _discriminator_loss(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        # Codes detached: this term trains the discriminator, never the encoder. Class 0 = true, 1 = permuted.
        z = z.detach()
        true = self.discriminator(z)
        perm = self.discriminator(permute_dims(z, generator))
        zeros = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return 0.5 * (F.cross_entropy(true, zeros) + F.cross_entropy(perm, torch.ones_like(zeros)))

    def objective_terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        terms, h, z = self._sampled(x)
        terms[TC.name] = self.gamma * self._tc_estimate(z).mean()
        terms[DISCRIMINATOR.name] = self._discriminator_loss(z)
        return terms, h

    def test_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns the KL, the TC estimate at the mean (unweighted) and the discriminator's loss there, per sample."""
        mu, logvar = self.posterior(self.encoder(x))
        # A fixed generator: evaluation draws nothing from the global RNG, so it leaves training reproducible.
        loss = self._discriminator_loss(mu, torch.Generator(device=mu.device).manual_seed(0))
        return {KL.name: gaussian_kl(mu, logvar), TC.name: self._tc_estimate(mu),
                DISCRIMINATOR.name: loss.expand(mu.shape[0])}


def _no_tasks(kind: str, tasks: Sequence[TaskSpec] | None) -> None:
    if tasks:
        raise MtlensError(f"auto-encoder {kind!r} trains on its images only, got {len(tasks)} task(s); pass tasks=() "
                          "and fit heads on its codes afterwards")


@MODELS.register("ae", aliases=("autoencoder", "auto_encoder"))
def ae(tasks: Sequence[TaskSpec] | None, input_shape: Sequence[int], latent_dim: int = 8,
       activation: str = "tanh") -> AutoEncoder:
    """Returns a plain auto-encoder for images `input_shape` (tasks must be empty)."""
    _no_tasks("ae", tasks)
    return AutoEncoder(_check_image_shape("ae", input_shape)[0], latent_dim, activation)


@MODELS.register("vae", aliases=("beta_vae", "beta-vae", "betavae"))
def vae(tasks: Sequence[TaskSpec] | None, input_shape: Sequence[int], latent_dim: int = 8, activation: str = "tanh",
        beta: float = 1.0) -> VAE:
    """Returns a beta-VAE (beta = 1: the VAE) for images `input_shape` (tasks must be empty)."""
    _no_tasks("vae", tasks)
    return VAE(_check_image_shape("vae", input_shape)[0], latent_dim, activation, beta)


@MODELS.register("factor_vae", aliases=("factorvae", "factor-vae"))
def factor_vae(tasks: Sequence[TaskSpec] | None, input_shape: Sequence[int], latent_dim: int = 8,
               activation: str = "tanh", gamma: float = 1.0, beta: float = 1.0, discriminator_layers: int = 6,
               discriminator_width: int = 1000) -> FactorVAE:
    """Returns a FactorVAE for images `input_shape` (tasks must be empty)."""
    _no_tasks("factor_vae", tasks)
    return FactorVAE(_check_image_shape("factor_vae", input_shape)[0], latent_dim, activation, gamma, beta,
                     discriminator_layers, discriminator_width)


AUTOENCODER_KINDS = ("ae", "vae", "factor_vae")
