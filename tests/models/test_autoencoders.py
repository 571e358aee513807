import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from mtlens import MtlensError
from mtlens.models import create_model
from mtlens.models.autoencoders import (AutoEncoder, FactorVAE, VAE, bernoulli_reconstruction, gaussian_kl,
                                        permute_dims)


def test_vae_kl_term_matches_its_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-6)
    # by hand: KL(N(1, 1) || N(0, 1)) = 1/2 per dimension; KL(N(0, e^2) || N(0, 1)) = (e^2 - 1 - 2) / 2
    assert gaussian_kl(torch.ones(1, 4), torch.zeros(1, 4)).item() == pytest.approx(2.0)
    assert gaussian_kl(torch.zeros(1, 1), torch.full((1, 1), 2.0)).item() == pytest.approx((np.e**2 - 3) / 2)
    model = VAE(1, latent_dim=3, beta=4.0)
    x = torch.rand(6, 1, 64, 64)
    torch.manual_seed(1)
    losses, h = model.step_losses({"x": x})
    mu, lv = model.posterior(h)
    assert losses.shape == (2,) and losses[1].item() == pytest.approx(4.0 * gaussian_kl(mu, lv).mean().item(), rel=1e-6)


def test_permuted_latent_sampler_keeps_each_marginal() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 6, generator=g)
    p = permute_dims(z, torch.Generator().manual_seed(1))
    assert torch.equal(p.sort(0).values, z.sort(0).values)  # every column holds the same values
    assert not torch.equal(p, z)
    moved = [(p[:, j] != z[:, j]).float().mean().item() for j in range(6)]
    assert min(moved) > 0.8  # each dimension is shuffled ...
    rows = {tuple(r) for r in z.tolist()}
    assert sum(tuple(r) in rows for r in p.tolist()) < 5  # ... independently: the joint rows are broken up
    assert torch.equal(permute_dims(z, torch.Generator().manual_seed(1)), p)
    with pytest.raises(MtlensError, match="codes \\[N, d\\]"):
        permute_dims(torch.zeros(3))


def test_objective_terms_and_gradient_routing() -> None:
    torch.manual_seed(0)
    model = FactorVAE(1, latent_dim=4, gamma=10.0, discriminator_layers=3, discriminator_width=32)
    x = (torch.rand(8, 1, 64, 64) > 0.7).float()
    losses, h = model.step_losses({"x": x})
    assert [t.name for t in model.tasks] == ["reconstruction", "kl", "tc", "discriminator"] and losses.shape == (4,)
    assert h.shape == (8, 8)
    enc, disc = list(model.encoder.parameters()), list(model.discriminator.parameters())
    g_tc = torch.autograd.grad(losses[2], enc + disc, allow_unused=True, retain_graph=True)
    assert any(g is not None and g.abs().sum() > 0 for g in g_tc[: len(enc)])
    assert all(g is None or g.abs().sum() == 0 for g in g_tc[len(enc):])  # tc never trains the discriminator
    g_d = torch.autograd.grad(losses[3], enc + disc, allow_unused=True)
    assert all(g is None or g.abs().sum() == 0 for g in g_d[: len(enc)])  # it never trains the encoder
    assert all(g is not None and g.abs().sum() > 0 for g in g_d[len(enc):])
    scores = model.score_batch({"x": x})
    assert set(scores) == {"reconstruction", "kl", "tc", "discriminator"}
    assert scores["reconstruction"][1] == x.numel() and scores["kl"][1] == 8


def test_autoencoder_codes_and_reconstruction_term() -> None:
    torch.manual_seed(0)
    ae = AutoEncoder(3, latent_dim=8)
    x = torch.rand(4, 3, 64, 64)
    losses, z = ae.step_losses({"x": x})
    logits = ae.decoder(ae.encoder(x))
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") / 4
    assert losses.shape == (1,) and losses[0].item() == pytest.approx(expected.item(), rel=1e-4)
    assert torch.equal(ae.encode(x), z) and ae.decode(z).shape == x.shape
    vae = VAE(1, latent_dim=3)
    x1 = torch.rand(2, 1, 64, 64)
    assert torch.equal(vae.encode(x1), vae.encoder(x1)[:, :3])  # the posterior mean
    assert bernoulli_reconstruction(torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)).item() == pytest.approx(4 * np.log(2))


def test_registry_and_bad_input() -> None:
    from mtlens.data.tasks import TaskSpec

    assert isinstance(create_model("beta_vae", (), (1, 64, 64), beta=2.0), VAE)
    fvae = create_model("factor_vae", (), (3, 64, 64), gamma=35.0)
    assert isinstance(fvae, FactorVAE) and fvae.gamma == 35.0 and isinstance(fvae.encoder.convs[1], torch.nn.Tanh)
    with pytest.raises(MtlensError, match="trains on its images only, got 1 task"):
        create_model("ae", (TaskSpec("t", "regression"),), (1, 64, 64))
    with pytest.raises(MtlensError, match="takes images \\(C, 64, 64\\).*got input shape \\(1, 28, 28\\)"):
        create_model("vae", (), (1, 28, 28))
    with pytest.raises(MtlensError, match="gamma must be >= 0"):
        create_model("factor_vae", (), (1, 64, 64), gamma=-1.0)
