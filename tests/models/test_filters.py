"""Information filters (seed 001 §III): the KL of eq. 8, gradients, ablations, evaluation noise, methods."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.data.tasks import TaskSpec
from mtlens.measures.task_similarity import clustering_success, task_dissimilarity
from mtlens.methods import available_methods, create_method
from mtlens.models import create_model
from mtlens.models.batched_heads import BatchedHeads, BatchedTaskLoss
from mtlens.models.filters import FilterModel, filter_kl
from mtlens.models.losses import task_losses

TASKS = [TaskSpec(f"t{j}", "multiclass", 4) for j in range(4)]


def _batch(n: int = 16, tasks=TASKS, shape=(1, 28, 28)) -> dict[str, torch.Tensor]:
    targets = torch.stack([torch.randint(0, t.output_dim if t.kind == "multiclass" else 2, (n,)) for t in tasks], 1)
    targets = targets.float()
    for j, t in enumerate(tasks):
        if t.kind == "regression":
            targets[:, j] = torch.randn(n)
    return {"x": torch.rand(n, *shape), "targets": targets}


def test_kl_equals_closed_form_of_eq8_and_a_monte_carlo_estimate() -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(5, 3, generator=g, dtype=torch.float64)
    s = torch.randn(2, 3, generator=g, dtype=torch.float64)  # noise log sigma^2
    xi = torch.randn(2, 3, generator=g, dtype=torch.float64)  # prior log xi^2
    kl = filter_kl(z, s, xi)
    # eq. 8 with the Gaussian KL's 1/2 on the log-ratio, written out term by term, averaged over the batch
    by_hand = torch.zeros(2, dtype=torch.float64)
    for j in range(2):
        for n in range(5):
            for i in range(3):
                sig2, xi2 = math.exp(s[j, i]), math.exp(xi[j, i])
                by_hand[j] += 0.5 * math.log(xi2 / sig2) + (sig2 + z[n, i] ** 2) / (2 * xi2) - 0.5
    by_hand /= 5
    torch.testing.assert_close(kl, by_hand, rtol=1e-12, atol=1e-12)
    # torch's own Gaussian KL
    p = torch.distributions.Normal(z[None], torch.exp(0.5 * s)[:, None])
    q = torch.distributions.Normal(torch.zeros(()), torch.exp(0.5 * xi)[:, None])
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(p, q).sum(-1).mean(-1), rtol=1e-12, atol=1e-12)
    # Monte Carlo: E_w[log p(w|x) - log q(w)] with w = z + noise
    w = p.sample((50_000,))
    mc = (p.log_prob(w) - q.log_prob(w)).sum(-1).mean(0).mean(-1)
    torch.testing.assert_close(mc, kl, rtol=0, atol=0.02)


def test_gradients_reach_noise_and_prior_variances_and_the_prior_optimum_is_closed_form() -> None:
    model = create_model("filters", TASKS, (1, 28, 28), beta=0.5)
    losses, z = model.step_losses(_batch())
    assert z.shape == (16, 4) and losses.shape == (4,)
    losses.sum().backward()
    grad = model.log_vars.grad  # [noise, prior] x [T, d]
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().min() > 0
    assert all(p.grad is not None for p in model.encoder.parameters())
    # d KL / d xi = 1/2 (1 - (sigma^2 + E z^2) / xi^2): zero at xi^2 = sigma^2 + E z^2
    zz = torch.randn(32, 4)
    s = torch.randn(3, 4)
    xi = torch.log(s.exp() + (zz**2).mean(0)).requires_grad_(True)
    filter_kl(zz, s, xi).sum().backward()
    assert xi.grad.abs().max() < 1e-6


def test_filters_concentrate_each_task_on_its_own_coordinates_and_the_groups_are_recovered() -> None:
    """Toy of seed 001 §IV: Z = X (identity encoder); tasks 0, 1 read coordinates 0, 1; tasks 2, 3 read 2, 3."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 4, generator=g)
    quadrant = lambda a, b: (a > 0).long() + 2 * (b > 0).long()  # noqa: E731  linear heads can read quadrants
    y = torch.stack([quadrant(x[:, 0], x[:, 1]), quadrant(x[:, 0] - 0.5, -x[:, 1] - 0.5),
                     quadrant(x[:, 2], x[:, 3]), quadrant(-x[:, 2] + 0.5, x[:, 3] - 0.5)], 1).float()
    torch.manual_seed(0)
    model = FilterModel(nn.Identity(), TASKS, 4, beta=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = {"x": x, "targets": y}
    for _ in range(120):
        opt.zero_grad()
        model.step_losses(batch)[0].sum().backward()
        opt.step()
    s = model.log_variances()
    used = torch.stack([s[0, :2], s[1, :2], s[2, 2:], s[3, 2:]])
    unused = torch.stack([s[0, 2:], s[1, 2:], s[2, :2], s[3, :2]])
    assert unused.min() > used.max() + 2.0  # the filters close the coordinates a task does not read
    result = clustering_success(task_dissimilarity(s).matrix, [(0, 1), (2, 3)])
    assert result.success and result.margin > 4.0
    assert s[:, :].max() > 1.5 and s.min() < -1.5  # both directions moved from the N(0, 0.01^2) start
    model.eval()
    model.eval_noise = "mean"
    acc = (model(x)["t0"].argmax(1) == y[:, 0].long()).float().mean()
    assert acc > 0.95


def test_batched_heads_give_the_per_task_losses_of_task_loss_for_mixed_kinds() -> None:
    tasks = [TaskSpec("m3", "multiclass", 3), TaskSpec("r", "regression"), TaskSpec("b", "binary"),
             TaskSpec("m5", "multiclass", 5)]
    heads = BatchedHeads(tasks, 6, hidden=(7,))
    w = torch.randn(4, 10, 6)
    out = heads(w)
    assert out.shape == (4, 10, 5)
    targets = _batch(10, tasks)["targets"]
    preds = heads.predictions(tasks, out)
    assert [tuple(p.shape) for p in preds.values()] == [(10, 3), (10,), (10,), (10, 5)]
    expected = task_losses(tasks, preds, targets, range(4))
    torch.testing.assert_close(BatchedTaskLoss(tasks)(out, targets), expected)
    # each head reads only its own input
    w2 = w.clone()
    w2[1] += 1.0
    changed = (heads(w2) - out).abs().amax(dim=(1, 2)) > 0
    assert changed.tolist() == [False, True, False, False]


def test_no_noise_fixed_noise_and_two_stage_switch() -> None:
    none = create_model("filters", TASKS, (1, 28, 28), noise="none")
    batch = _batch()
    z = none.encode(batch["x"])
    assert torch.equal(none.filtered(z)[2], z) and none.beta.sum() == 0
    fixed = create_model("filters", TASKS, (1, 28, 28), noise="fixed", beta=0.05)
    assert torch.equal(fixed.noise_log_var, torch.ones(4, 4))
    fixed.step_losses(batch)[0].sum().backward()
    assert torch.all(fixed.log_vars.grad[0] == 0) and fixed.log_vars.grad[1].abs().min() > 0  # noise frozen
    fixed.log_vars.grad = None
    fixed.learn_variances()
    assert list(fixed.shared_parameters()) == []
    fixed.step_losses(batch)[0].sum().backward()
    assert fixed.log_vars.grad[0].abs().min() > 0
    with pytest.raises(MtlensError, match="no variances"):
        none.learn_variances()


def test_evaluation_noise_sample_is_reproducible_mean_is_the_code_and_training_stream_untouched() -> None:
    model = create_model("filters", TASKS, (1, 28, 28))
    x = torch.rand(8, 1, 28, 28)
    model.eval()
    assert model.eval_noise == "sample"
    first = model(x)["t1"]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    model.eval()  # a new evaluation pass draws the same noise again
    second = model(x)["t1"]
    assert torch.equal(first, second) and torch.equal(torch.get_rng_state(), state)
    model.eval_noise = "mean"
    mean = model(x)["t1"]
    z = model.encode(x)
    torch.testing.assert_close(mean, model.heads(z.expand(4, *z.shape))[1])
    assert not torch.allclose(mean, first)
    with pytest.raises(MtlensError, match="eval_noise"):
        model.eval_noise = "median"


def test_built_in_uncertainty_weighting_is_the_uncertainty_method_shifted_by_log_2_when_beta_is_0() -> None:
    torch.manual_seed(3)
    a = create_model("filters", TASKS, (1, 28, 28), beta=0.0, uncertainty=True)
    b = create_model("filters", TASKS, (1, 28, 28), beta=0.0)
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("uncertainty")})
    batch = _batch()
    torch.manual_seed(9)
    create_method("ew", 4).backward(*a.step_losses(batch)[:1], a.shared_parameters(), None, a.task_parameters())
    torch.manual_seed(9)
    uw = create_method("uncertainty", 4, init_log_var=-math.log(2))
    uw.backward(b.step_losses(batch)[0], b.shared_parameters(), None, b.task_parameters())
    for pa, pb in zip(a.encoder.parameters(), b.encoder.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)
    torch.testing.assert_close(a.uncertainty.log_var.grad, uw.log_var.grad)


@pytest.mark.parametrize("level", ["param", "feature"])
def test_every_method_trains_the_filter_model(level: str) -> None:
    for name in available_methods():
        try:
            method = create_method(name, 4, level=level)
        except MtlensError:
            continue  # a method defined at one level only
        torch.manual_seed(0)
        model = create_model("filters", TASKS, (1, 8, 8), encoder_hidden=(8,), beta=0.1)
        losses, z = model.step_losses(_batch(8, shape=(1, 8, 8)))
        method.backward(losses, model.shared_parameters(), z, model.task_parameters())
        grads = [p.grad for p in [*model.encoder.parameters(), model.log_vars]]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), (name, level)
        assert model.log_vars.grad[0].abs().sum() > 0, (name, level)


def test_chaining_through_z_covers_the_whole_loss_kl_included() -> None:
    from mtlens.methods.gradients import task_jacobian, vjp_rows

    model = create_model("filters", TASKS, (1, 28, 28), beta=0.5)
    losses, z = model.step_losses(_batch())
    shared = list(model.shared_parameters())
    rows = vjp_rows(z, shared, task_jacobian(losses, [z], batched=False).view(4, *z.shape), batched=False)
    direct = torch.autograd.grad(losses.sum(), shared)
    torch.testing.assert_close(rows.sum(0), torch.cat([g.reshape(-1) for g in direct]))


def test_per_task_beta_weights_each_kl() -> None:
    model = create_model("filters", TASKS, (1, 28, 28), beta=[0.0, 0.1, 0.2, 0.4])
    torch.manual_seed(5)
    batch = _batch()
    parts = model.objective(batch)
    torch.testing.assert_close(parts["kl"], filter_kl(model.encode(batch["x"]), model.noise_log_var, model.prior_log_var))
    torch.testing.assert_close(parts["kl"], model.kl(model.encode(batch["x"])))
    torch.testing.assert_close(parts["loss"], parts["ce"] + torch.tensor([0.0, 0.1, 0.2, 0.4]) * parts["kl"])


@pytest.mark.parametrize(
    "options, match",
    [({"beta": -0.1}, "beta must be finite and >= 0, got -0.1"), ({"beta": [0.1, 0.2]}, "one per task"),
     ({"latent_dim": 0}, "latent_dim .* got 0"), ({"noise": "gauss"}, "unknown noise 'gauss'"),
     ({"noise": "none", "beta": 0.1}, "noise='none' has no KL"), ({"eval_noise": "mode"}, "eval_noise 'mode'"),
     ({"encoder": "resnet"}, "unknown encoder 'resnet'")],
)
def test_bad_filter_options_are_one_line_errors(options: dict, match: str) -> None:
    with pytest.raises(MtlensError, match=match) as info:
        create_model("filters", TASKS, (1, 28, 28), **options)
    assert "\n" not in str(info.value)


def test_alexnet_encoder_for_large_images() -> None:
    model = create_model("filters", TASKS[:2], (3, 64, 64), latent_dim=8)
    assert type(model.encoder).__name__ == "AlexNetEncoder"
    assert model.encode(torch.rand(2, 3, 64, 64)).shape == (2, 8)
    assert np.isclose(model.encoder.dense.in_features, 9216)
