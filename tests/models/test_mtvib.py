"""MTVIB (Qian et al. 2020, as seed 001 §V-A compares to it): KL, objective, sampling, registry."""

import math

import pytest
import torch

from mtlens import MtlensError
from mtlens.data.tasks import TaskSpec
from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.models.mtvib import standard_normal_kl

TASKS = [TaskSpec("digit_1", "multiclass", 10), TaskSpec("digit_2", "multiclass", 10)]


def _batch(n: int = 12) -> dict[str, torch.Tensor]:
    return {"x": torch.rand(n, 1, 28, 28), "targets": torch.randint(0, 10, (n, 2)).float()}


def test_kl_to_standard_normal_equals_its_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(6, 4, generator=g, dtype=torch.float64)
    log_var = torch.randn(6, 4, generator=g, dtype=torch.float64)
    by_hand = sum(
        0.5 * (math.exp(log_var[n, i]) + mean[n, i] ** 2 - 1 - log_var[n, i]) for n in range(6) for i in range(4)
    ) / 6
    assert math.isclose(standard_normal_kl(mean, log_var).item(), float(by_hand), rel_tol=1e-12)
    p = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
    q = torch.distributions.Normal(torch.zeros(()), torch.ones(()))
    reference = torch.distributions.kl_divergence(p, q).sum(1).mean()
    torch.testing.assert_close(standard_normal_kl(mean, log_var), reference, rtol=1e-12, atol=1e-12)


def test_objective_is_uncertainty_weighted_ce_plus_a_shared_kl_split_over_tasks() -> None:
    model = create_model("mtvib", TASKS, (1, 28, 28), beta=0.01)
    with torch.no_grad():
        model.uncertainty.log_var.copy_(torch.tensor([0.3, -0.2]))
    torch.manual_seed(1)
    parts = model.objective(_batch())
    w = torch.tensor([0.3, -0.2])
    expected = torch.exp(-w) * parts["ce"] + 0.5 * w + 0.01 * parts["kl"] / 2
    torch.testing.assert_close(parts["loss"], expected)
    losses, stats = model.step_losses(_batch())
    assert stats.shape == (12, 8)  # mean and log-variance: the representation the methods differentiate


def test_sampled_in_training_mean_at_evaluation() -> None:
    model = create_model("mtvib", TASKS, (1, 28, 28))
    batch = _batch()
    torch.manual_seed(0)
    a = model.objective(batch)["ce"]
    torch.manual_seed(1)
    b = model.objective(batch)["ce"]
    assert not torch.allclose(a, b)  # a fresh draw of z per step
    model.eval()
    mean = model.encoder(batch["x"])
    torch.testing.assert_close(model(batch["x"])["digit_2"], model.heads(mean.expand(2, *mean.shape))[1])
    assert torch.equal(model(batch["x"])["digit_1"], model(batch["x"])["digit_1"])


@pytest.mark.parametrize("method, level", [("ew", "param"), ("pcgrad", "param"), ("mgda", "feature")])
def test_methods_reach_the_encoder_through_mean_and_log_variance(method: str, level: str) -> None:
    model = create_model("mtvib", TASKS, (1, 28, 28), beta=0.1)
    losses, stats = model.step_losses(_batch())
    create_method(method, 2, level=level).backward(losses, model.shared_parameters(), stats, model.task_parameters())
    head = model.encoder.log_var.weight.grad
    assert head is not None and head.abs().sum() > 0 and torch.isfinite(head).all()


def test_param_level_chain_equals_the_plain_backward_for_equal_weights() -> None:
    # the per-task encoder gradients chained through the representation must cover the KL too: their sum
    # equals the plain gradient of the summed losses
    from mtlens.methods.gradients import task_jacobian, vjp_rows

    model = create_model("mtvib", TASKS, (1, 28, 28), beta=0.5)
    torch.manual_seed(2)
    losses, stats = model.step_losses(_batch())
    shared = list(model.shared_parameters())
    jac_z = task_jacobian(losses, [stats], batched=False)
    rows = vjp_rows(stats, shared, jac_z.view(2, *stats.shape), batched=False)
    direct = torch.autograd.grad(losses.sum(), shared)
    torch.testing.assert_close(rows.sum(0), torch.cat([g.reshape(-1) for g in direct]))


def test_bad_mtvib_options() -> None:
    with pytest.raises(MtlensError, match="beta must be finite and >= 0, got -1.0"):
        create_model("mtvib", TASKS, (1, 28, 28), beta=-1.0)
    with pytest.raises(MtlensError, match="one number"):
        create_model("mtvib", TASKS, (1, 28, 28), beta=[0.1, 0.2])
    with pytest.raises(MtlensError, match="latent_dim .* got 0"):
        create_model("mtvib", TASKS, (1, 28, 28), latent_dim=0)
