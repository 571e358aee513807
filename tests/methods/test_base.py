import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.methods import GradientAggregator, create_method, shared_jacobian, task_jacobian


class _Mean(GradientAggregator):
    name = "mean_test"

    def aggregate(self, jacobian, losses=None):
        self.last_weights = torch.full((jacobian.shape[0],), 1.0 / jacobian.shape[0])
        return jacobian.mean(0)


def _model(seed: int = 0):
    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    heads = nn.ModuleList([nn.Linear(5, 1) for _ in range(3)])
    x, y = torch.randn(6, 1, 8, 8), torch.randn(6, 3)
    return enc, heads, x, y


def _losses(enc, heads, x, y):
    z = enc(x)
    return torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)]), z


def test_batched_jacobian_equals_loop() -> None:
    enc, heads, x, y = _model()
    losses, _ = _losses(enc, heads, x, y)
    params = list(enc.parameters())
    j_batched = task_jacobian(losses, params, batched=True)
    j_loop = task_jacobian(losses, params, batched=False)
    j_sep = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(l, params, retain_graph=True)]) for l in losses])
    torch.testing.assert_close(j_batched, j_sep)
    torch.testing.assert_close(j_loop, j_sep)


def test_param_level_via_representation_equals_direct_jacobian() -> None:
    enc, heads, x, y = _model()
    shared = list(enc.parameters())
    losses, z = _losses(enc, heads, x, y)
    direct = task_jacobian(losses, shared)
    torch.testing.assert_close(shared_jacobian(losses, shared), direct)
    torch.testing.assert_close(shared_jacobian(losses, shared, z), direct)
    jz = task_jacobian(losses, [z])
    torch.testing.assert_close(shared_jacobian(losses, shared, z, jac_z=jz, batched=False), direct)


@pytest.mark.parametrize("use_z", [True, False])
def test_mean_aggregator_equals_mean_loss_backward(use_z: bool) -> None:
    enc, heads, x, y = _model()
    losses, z = _losses(enc, heads, x, y)
    _Mean(3).backward(losses, enc.parameters(), z if use_z else None, heads.parameters())
    got = [p.grad.clone() for p in enc.parameters()]
    head_got = [p.grad.clone() for p in heads.parameters()]
    enc.zero_grad(), heads.zero_grad()
    losses, z = _losses(enc, heads, x, y)
    losses.mean().backward(inputs=list(enc.parameters()))
    for g, p in zip(got, enc.parameters()):
        torch.testing.assert_close(g, p.grad)
    # heads get the plain sum of their own losses
    losses, z = _losses(enc, heads, x, y)
    want = torch.autograd.grad(losses.sum(), list(heads.parameters()))
    for g, w in zip(head_got, want):
        torch.testing.assert_close(g, w)


def test_feature_level_mean_equals_mean_loss() -> None:
    enc, heads, x, y = _model()
    losses, z = _losses(enc, heads, x, y)
    _Mean(3, level="feature").backward(losses, enc.parameters(), z, heads.parameters())
    got = [p.grad.clone() for p in enc.parameters()]
    enc.zero_grad()
    losses, z = _losses(enc, heads, x, y)
    losses.mean().backward(inputs=list(enc.parameters()))
    for g, p in zip(got, enc.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_ew_is_plain_sum_and_errors() -> None:
    enc, heads, x, y = _model()
    losses, z = _losses(enc, heads, x, y)
    w = create_method("ew", 3).backward(losses, enc.parameters())
    assert w.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(MtlensError, match="expected 3 task losses"):
        create_method("equal", 3).backward(torch.ones(2), [])
    with pytest.raises(MtlensError, match="needs the shared representation"):
        _Mean(3, level="feature").backward(torch.ones(3, requires_grad=True), [])
    with pytest.raises(MtlensError, match="unknown method"):
        create_method("nope", 3)


def test_representation_rows_are_dl_dz_and_give_the_heads_the_head_objective() -> None:
    from mtlens.methods.gradients import representation_rows

    enc, heads, x, y = _model()
    losses, z = _losses(enc, heads, x, y)
    head_params = list(heads.parameters())
    for p in head_params:  # .grad accumulates, as backward does
        p.grad = torch.ones_like(p)
    slopes = torch.tensor([0.5, 2.0, -1.0])
    rows = representation_rows(losses, z, head_params, slopes)
    torch.testing.assert_close(rows.reshape(3, -1), task_jacobian(losses, [z]))
    want = torch.autograd.grad((slopes * losses).sum(), head_params, retain_graph=True)
    for p, w in zip(head_params, want):
        torch.testing.assert_close(p.grad, w + 1.0)


@pytest.mark.parametrize("use_z", [True, False])
def test_a_head_objective_other_than_the_sum_reaches_the_heads(use_z: bool) -> None:
    # DB-MTL's heads train on sum_t log L_t: the per-task passes scale each head's gradient by 1 / L_t
    enc, heads, x, y = _model()
    losses, z = _losses(enc, heads, x, y)
    create_method("db_mtl", 3).backward(losses, enc.parameters(), z if use_z else None, heads.parameters())
    got = [p.grad.clone() for p in heads.parameters()]
    losses, _ = _losses(enc, heads, x, y)
    want = torch.autograd.grad((losses + 1e-8).log().sum(), list(heads.parameters()))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
