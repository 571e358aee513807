"""Loss-weighting methods: each method's defining property on fixed losses, state, bad input, and LibMTL 1.1.5."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.methods import create_method
from mtlens.methods.dwa import DWA
from mtlens.methods.famo import FAMO
from mtlens.methods.gradnorm import GradNorm, last_layer_params
from mtlens.methods.imtl_l import IMTLL
from mtlens.methods.rlw import RLW
from mtlens.methods.uncertainty import UncertaintyWeighting

from _refs import libmtl_weighting

NAMES = ["rlw", "dwa", "uncertainty", "gradnorm", "famo", "imtl_l"]


# ---------------------------------------------------------------------------------------------- helpers
def _model(n_tasks: int = 2, seed: int = 0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    enc = nn.Sequential(nn.Linear(4, 3, bias=False))
    heads = nn.ModuleList([nn.Linear(3, 1) for _ in range(n_tasks)])
    with torch.no_grad():
        for p in [*enc.parameters(), *heads.parameters()]:
            p.copy_(torch.randn(p.shape, generator=g))
    x, y = torch.randn(6, 4, generator=g), torch.randn(6, n_tasks, generator=g) * torch.arange(1, n_tasks + 1)
    return enc, heads, x, y


def _losses(enc, heads, x, y):  # type: ignore[no-untyped-def]
    z = enc(x)
    return torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)]), z


def _grads(params) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    return [p.grad.clone() for p in params]


# ---------------------------------------------------------------------------------------------- RLW
def test_rlw_weights_are_seeded_softmax_normals() -> None:
    losses = torch.tensor([1.0, 2.0, 3.0])
    a, b = RLW(3, seed=7), RLW(3, seed=7)
    wa = torch.stack([a.weights(losses) for _ in range(5)])
    wb = torch.stack([b.weights(losses) for _ in range(5)])
    torch.testing.assert_close(wa, wb, rtol=0, atol=0)
    assert bool((wa > 0).all())
    torch.testing.assert_close(wa.sum(1), torch.ones(5))
    want = torch.softmax(torch.randn(5, 3, generator=torch.Generator().manual_seed(7)), 1)
    torch.testing.assert_close(wa, want)
    assert not torch.equal(wa[0], wa[1])
    assert not torch.equal(RLW(3, seed=8).weights(losses), wa[0])


def test_rlw_backward_weights_losses_and_resumes() -> None:
    enc, heads, x, y = _model()
    m = RLW(2, seed=3)
    losses, _ = _losses(enc, heads, x, y)
    w = m.backward(losses, enc.parameters())
    got = _grads(enc.parameters())
    enc.zero_grad()
    losses, _ = _losses(enc, heads, x, y)
    (w * losses).sum().backward()
    for g, p in zip(got, enc.parameters()):
        torch.testing.assert_close(g, p.grad)
    state = m.state_dict()
    after = [m.weights(losses) for _ in range(3)]
    fresh = RLW(2, seed=99)
    fresh.load_state_dict(state)
    assert fresh.step == 1
    torch.testing.assert_close(torch.stack([fresh.weights(losses) for _ in range(3)]), torch.stack(after))


def test_rlw_equals_libmtl() -> None:
    ref = libmtl_weighting("RLW", 3)
    losses = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
    torch.manual_seed(11)  # LibMTL draws from the global generator
    want = [torch.from_numpy(ref.backward(losses, dist="Normal")) for _ in range(4)]
    m = RLW(3, seed=11)
    got = [m.weights(losses.detach()) for _ in range(4)]
    torch.testing.assert_close(torch.stack(got), torch.stack(want), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------- DWA
def _dwa_steps(m: DWA, epoch_losses: list[list[list[float]]]) -> list[torch.Tensor]:
    """Runs the per-step losses of each epoch through the method; returns each epoch's weights."""
    used = []
    for steps in epoch_losses:
        for losses in steps:
            _, w = m.weighted_loss(torch.tensor(losses))
        used.append(w)
        m.epoch_end()
    return used


def test_dwa_ones_for_two_epochs_then_formula() -> None:
    m = DWA(2)
    # epoch averages: (2, 1), (1, 1), then (1.5, 0.5)
    used = _dwa_steps(m, [[[3.0, 1.0], [1.0, 1.0]], [[1.0, 2.0], [1.0, 0.0]], [[1.5, 0.5]]])
    torch.testing.assert_close(used[0], torch.ones(2))
    torch.testing.assert_close(used[1], torch.ones(2))
    # epoch 2: r = (1/2, 1/1), T = 2: weights 2 e^{r_k/2} / sum e^{r_i/2}
    e0, e1 = math.exp(0.25), math.exp(0.5)
    torch.testing.assert_close(used[2], torch.tensor([2 * e0 / (e0 + e1), 2 * e1 / (e0 + e1)]))
    # epoch 3 uses epochs 2 and 1: r = (1.5/1, 0.5/1)
    e0, e1 = math.exp(0.75), math.exp(0.25)
    torch.testing.assert_close(m.weights(torch.ones(2)), torch.tensor([2 * e0 / (e0 + e1), 2 * e1 / (e0 + e1)]))
    assert m.history == ((2.0, 1.0), (1.0, 1.0), (1.5, 0.5))


def test_dwa_backward_and_state() -> None:
    m = DWA(2, temperature=2.0)
    _dwa_steps(m, [[[2.0, 1.0]], [[1.0, 1.0]]])
    state = m.state_dict()
    _dwa_steps(m, [[[5.0, 5.0]]])
    assert state["history"] == ((2.0, 1.0), (1.0, 1.0))  # the saved state did not move
    fresh = DWA(2)
    fresh.load_state_dict(state)
    enc, heads, x, y = _model()
    losses, _ = _losses(enc, heads, x, y)
    w = fresh.backward(losses, enc.parameters())
    e0, e1 = math.exp(0.25), math.exp(0.5)
    torch.testing.assert_close(w, torch.tensor([2 * e0 / (e0 + e1), 2 * e1 / (e0 + e1)]))
    assert fresh.epoch_steps == 1


def test_dwa_zero_losses_and_errors() -> None:
    m = DWA(2)
    used = _dwa_steps(m, [[[0.0, 1.0]], [[0.0, 0.5]], [[0.0, 0.5]]])
    # task 0's loss stays 0: its rate is set to 1; task 1's is 0.5
    e0, e1 = math.exp(0.5), math.exp(0.25)
    torch.testing.assert_close(used[2], torch.tensor([2 * e0 / (e0 + e1), 2 * e1 / (e0 + e1)]))
    with pytest.raises(MtlensError, match="epoch_end"):
        m.epoch_end()
    with pytest.raises(MtlensError, match="temperature"):
        DWA(2, temperature=0.0)


def test_dwa_equals_libmtl() -> None:
    buffer = np.array([[2.0, 1.0, 0.7], [1.0, 1.0, 0.9]])  # [T, epochs] of epoch-averaged losses
    ref = libmtl_weighting("DWA", 2, epoch=2, loss_buffer=buffer)
    losses = torch.tensor([0.6, 0.8], requires_grad=True)
    want = torch.from_numpy(ref.backward(losses, T=2.0))
    m = DWA(2)
    _dwa_steps(m, [[[2.0, 1.0]], [[1.0, 1.0]]])
    torch.testing.assert_close(m.weights(losses.detach()), want.float())
    ref3 = libmtl_weighting("DWA", 2, epoch=3, loss_buffer=buffer)
    want3 = torch.from_numpy(ref3.backward(losses, T=2.0))
    _dwa_steps(m, [[[0.7, 0.9]]])
    torch.testing.assert_close(m.weights(losses.detach()), want3.float())


# ---------------------------------------------------------------------------------------------- uncertainty
def test_uncertainty_loss_and_gradient_in_s() -> None:
    m = UncertaintyWeighting(2)
    with torch.no_grad():
        m.log_var.copy_(torch.tensor([0.4, -1.0]))
    losses = torch.tensor([2.0, 0.5])
    total, w = m.weighted_loss(losses)
    s = torch.tensor([0.4, -1.0])
    torch.testing.assert_close(total, (0.5 * torch.exp(-s) * losses + 0.5 * s).sum())
    torch.testing.assert_close(w, 0.5 * torch.exp(-s))
    total.backward()
    # d/ds_t [0.5 e^{-s_t} L_t + 0.5 s_t] = 0.5 (1 - e^{-s_t} L_t)
    torch.testing.assert_close(m.log_var.grad, 0.5 * (1 - torch.exp(-s) * losses))
    assert m.parameters() == [m.log_var]


def test_uncertainty_equals_libmtl() -> None:
    enc, heads, x, y = _model()
    ref = libmtl_weighting("UW", 2)
    losses, _ = _losses(enc, heads, x, y)
    want_w = torch.from_numpy(ref.backward(losses))
    want_enc, want_s = _grads(enc.parameters()), ref.loss_scale.grad.clone()
    enc.zero_grad()
    m = UncertaintyWeighting(2, init_log_var=-0.5)
    losses, _ = _losses(enc, heads, x, y)
    w = m.backward(losses, enc.parameters())
    torch.testing.assert_close(w, want_w)
    torch.testing.assert_close(m.log_var.grad, want_s)
    for g, p in zip(want_enc, enc.parameters()):
        torch.testing.assert_close(p.grad, g)


# ---------------------------------------------------------------------------------------------- GradNorm
def test_gradnorm_grad_loss_on_known_norms() -> None:
    m = GradNorm(2, alpha=1.5)
    # equal norms, task 0 trains slower (r_0 = 1.2 > r_1 = 0.8): its weight must grow
    norms, rates = torch.tensor([1.0, 1.0]), torch.tensor([1.2, 0.8])
    loss = m.grad_loss(norms, rates)
    targets = 1.0 * rates**1.5  # Gbar = 1
    torch.testing.assert_close(loss, (torch.ones(2) - targets).abs().sum())
    (g,) = torch.autograd.grad(loss, [m.loss_weights])
    torch.testing.assert_close(g, torch.tensor([-1.0, 1.0]))  # sign(G_t - target_t) * n_t
    # equal rates, task 0's gradient is twice as large: its weight must shrink
    norms, rates = torch.tensor([2.0, 1.0]), torch.ones(2)
    (g,) = torch.autograd.grad(m.grad_loss(norms, rates), [m.loss_weights])
    torch.testing.assert_close(g, torch.tensor([2.0, -1.0]))
    # a small step on w moves the weighted norms towards their targets
    with torch.no_grad():
        w = m.loss_weights - 0.1 * g
    gw = w * norms
    assert float((gw - gw.mean() * rates**1.5).abs().sum()) < float(m.grad_loss(norms, rates).detach())


def test_gradnorm_backward_rates_renormalisation_and_levels() -> None:
    enc, heads, x, y = _model()
    m = GradNorm(2)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    losses, z = _losses(enc, heads, x, y)
    w = m.backward(losses, enc.parameters())
    torch.testing.assert_close(w, torch.ones(2))
    torch.testing.assert_close(m.initial_losses, losses.detach())
    # the network gradient is that of sum_t w_t L_t with w = 1
    got = _grads(enc.parameters())
    enc.zero_grad()
    losses, z = _losses(enc, heads, x, y)
    losses.sum().backward()
    for g, p in zip(got, enc.parameters()):
        torch.testing.assert_close(g, p.grad)
    # the w gradient: first step r = 1, so it pulls G_t towards Gbar
    W = enc[0].weight
    n = torch.stack([torch.autograd.grad(l, [W], retain_graph=True)[0].norm() for l in _losses(enc, heads, x, y)[0]])
    gbar = n.mean()
    torch.testing.assert_close(m.loss_weights.grad, torch.sign(n - gbar) * n)
    opt.step()
    assert abs(float(m.loss_weights.detach().sum()) - 2.0) > 1e-4  # the SGD step moved the sum off T
    losses, z = _losses(enc, heads, x, y)
    w2 = m.backward(losses, enc.parameters())
    torch.testing.assert_close(w2.sum(), torch.tensor(2.0))  # renormalised to sum T before use
    # feature level takes the norms of the representation gradients
    f = GradNorm(2, level="feature")
    losses, z = _losses(enc, heads, x, y)
    nz = torch.stack([torch.autograd.grad(l, [z], retain_graph=True)[0].norm() for l in losses])
    f.backward(losses, enc.parameters(), z)
    torch.testing.assert_close(f.last_norms, nz.detach())


def test_gradnorm_last_layer_and_errors() -> None:
    a, b, c = torch.zeros(3, 3), torch.zeros(3), torch.zeros(2)
    assert last_layer_params([a, b]) == [a]
    assert last_layer_params([b, c])[0] is c
    with pytest.raises(MtlensError, match="initial loss of task 1"):
        GradNorm(2).backward(torch.tensor([1.0, 0.0], requires_grad=True), [torch.zeros(2, 2, requires_grad=True)])
    with pytest.raises(MtlensError, match=r"initial_losses must be one number per task .*3 values for 2 tasks"):
        GradNorm(2, initial_losses=torch.ones(3))


def test_gradnorm_equals_libmtl_first_step() -> None:
    enc, heads, x, y = _model()
    shared = list(enc.parameters())  # one weight matrix: the last shared layer is all shared params
    losses, _ = _losses(enc, heads, x, y)
    init = losses.detach().numpy().astype(np.float64)[:, None]
    ref = libmtl_weighting("GradNorm", 2, shared=shared, epoch=1, loss_buffer=init)
    for p in shared:
        p.grad = torch.zeros_like(p)
    want_w = torch.from_numpy(ref.backward(losses, alpha=1.5))
    want_enc, want_heads, want_logit_grad = _grads(shared), _grads(heads.parameters()), ref.loss_scale.grad.clone()
    enc.zero_grad(), heads.zero_grad()
    m = GradNorm(2, initial_losses=torch.from_numpy(init[:, 0]).float())
    losses, _ = _losses(enc, heads, x, y)
    w = m.backward(losses, shared)
    torch.testing.assert_close(w, want_w)
    for g, p in zip(want_enc, shared):
        torch.testing.assert_close(p.grad, g)
    for g, p in zip(want_heads, heads.parameters()):
        torch.testing.assert_close(p.grad, g)
    # LibMTL's weights are T softmax(logits); at logits = 1 its chain rule maps our dw to dw - mean(dw)
    ours = m.loss_weights.grad
    torch.testing.assert_close(ours - ours.mean(), want_logit_grad)


# ---------------------------------------------------------------------------------------------- FAMO
def test_famo_weighted_loss_gradient_and_one_logit_step() -> None:
    m = FAMO(2)
    losses = torch.tensor([1.0, 2.0], requires_grad=True)
    total, w = m.weighted_loss(losses)
    # z = (1/2, 1/2); effective weights (z_t / L_t) / sum_i (z_i / L_i) = (2/3, 1/3)
    torch.testing.assert_close(w, torch.tensor([2 / 3, 1 / 3]))
    total.backward()
    torch.testing.assert_close(losses.grad, torch.tensor([2 / 3, 1 / 3]))
    new = torch.tensor([0.5, 1.8])
    delta = torch.tensor([math.log(1.0 / 0.5), math.log(2.0 / 1.8)])
    # softmax Jacobian at z = (1/2, 1/2): J^T delta = ((d0 - d1) / 4, (d1 - d0) / 4)
    g = torch.tensor([(delta[0] - delta[1]) / 4, (delta[1] - delta[0]) / 4])
    torch.testing.assert_close(m.logit_gradient(new), g)
    m.after_step(lambda: new)
    # Adam's first step from 0 (decay adds gamma * 0): -lr * g / (|g| + 1e-8)
    torch.testing.assert_close(m.logits.detach(), -0.025 * g / (g.abs() + 1e-8))
    assert float(m.logits.detach()[1]) > 0  # task 1 decreased less: its logit grows


def test_famo_state_resumes_exactly_and_errors() -> None:
    m = FAMO(3, gamma=0.01)
    seq = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.9, 1.9, 2.5]), torch.tensor([0.8, 1.9, 2.0])]
    for a, b in zip(seq, seq[1:]):
        m.weighted_loss(a)
        m.after_step(lambda: b)
    state = m.state_dict()
    m.weighted_loss(seq[2])
    m.after_step(lambda: torch.tensor([0.7, 1.7, 1.9]))
    want = m.logits.detach().clone()
    fresh = FAMO(3, gamma=0.01)
    fresh.load_state_dict(state)
    fresh.weighted_loss(seq[2])
    fresh.after_step(lambda: torch.tensor([0.7, 1.7, 1.9]))
    torch.testing.assert_close(fresh.logits.detach(), want, rtol=0, atol=0)
    with pytest.raises(MtlensError, match="before backward"):
        FAMO(2).after_step(lambda: torch.ones(2))
    with pytest.raises(MtlensError, match="takes a callable"):
        FAMO(2).after_step(torch.ones(2))
    with pytest.raises(MtlensError, match="task 1"):
        FAMO(2).weighted_loss(torch.tensor([1.0, -0.5]))
    with pytest.raises(MtlensError, match="expected 2 task losses"):
        f = FAMO(2)
        f.weighted_loss(torch.ones(2))
        f.after_step(lambda: torch.ones(3))


# ---------------------------------------------------------------------------------------------- IMTL-L
def test_imtl_l_loss_and_gradient_in_s() -> None:
    m = IMTLL(2)
    with torch.no_grad():
        m.log_scale.copy_(torch.tensor([0.3, -0.2]))
    losses = torch.tensor([2.0, 0.5], requires_grad=True)
    scaled = m.scaled_losses(losses)
    s = torch.tensor([0.3, -0.2])
    torch.testing.assert_close(scaled, torch.exp(s) * losses.detach() - s)
    total, w = m.weighted_loss(losses)
    torch.testing.assert_close(w, torch.exp(s))
    total.backward()
    torch.testing.assert_close(m.log_scale.grad, torch.exp(s) * losses.detach() - 1)  # zero at e^s = 1/L
    torch.testing.assert_close(losses.grad, torch.exp(s))


def test_imtl_l_scale_equals_libmtl_imtl() -> None:
    enc, heads, x, y = _model()
    shared = list(enc.parameters())
    for p in shared:
        p.grad = torch.zeros_like(p)
    ref = libmtl_weighting("IMTL", 2, shared=shared)
    with torch.no_grad():
        ref.loss_scale.copy_(torch.tensor([0.3, -0.2]))
    losses, _ = _losses(enc, heads, x, y)
    ref.backward(losses)
    m = IMTLL(2)
    with torch.no_grad():
        m.log_scale.copy_(torch.tensor([0.3, -0.2]))
    losses, _ = _losses(enc, heads, x, y)
    m.scaled_losses(losses).sum().backward(inputs=m.parameters())
    torch.testing.assert_close(m.log_scale.grad, ref.loss_scale.grad)


# ---------------------------------------------------------------------------------------------- all methods
@pytest.mark.parametrize("name", NAMES)
def test_nan_loss_raises_naming_the_task(name: str) -> None:
    m = create_method(name, 3)
    losses = torch.tensor([1.0, float("nan"), 2.0], requires_grad=True)
    with pytest.raises(MtlensError, match="task 1"):
        m.backward(losses, [torch.zeros(2, 2, requires_grad=True)], torch.zeros(2, requires_grad=True))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_tasks", [1, 3])
def test_finite_weights_with_zero_losses_and_one_task(name: str, n_tasks: int) -> None:
    enc, heads, x, y = _model(n_tasks)
    m = create_method(name, n_tasks, **({"initial_losses": torch.ones(n_tasks)} if name == "gradnorm" else {}))
    opt = torch.optim.SGD([*enc.parameters(), *heads.parameters(), *m.parameters()], lr=0.01)
    y = torch.zeros_like(y)
    with torch.no_grad():
        for h in heads:
            h.weight.zero_(), h.bias.zero_()  # every loss is exactly 0
    for _ in range(3):
        opt.zero_grad()
        losses, z = _losses(enc, heads, x, y)
        assert float(losses.detach().sum()) == 0.0
        w = m.backward(losses, enc.parameters(), z, heads.parameters())
        opt.step()
        m.after_step(lambda: _losses(enc, heads, x, y)[0])
        m.epoch_end()
        assert w.shape == (n_tasks,) and bool(torch.isfinite(w).all())
        assert all(bool(torch.isfinite(p.grad).all()) for p in enc.parameters())


@pytest.mark.parametrize("name", ["uncertainty", "gradnorm", "imtl_l"])
def test_learnable_state_round_trip(name: str) -> None:
    enc, heads, x, y = _model()
    m = create_method(name, 2)
    opt = torch.optim.SGD([*enc.parameters(), *m.parameters()], lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        losses, z = _losses(enc, heads, x, y)
        m.backward(losses, enc.parameters(), z)
        opt.step()
    state = m.state_dict()
    fresh = create_method(name, 2)
    fresh.load_state_dict(state)
    for a, b in zip(fresh.parameters(), m.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert fresh.step == 2


def test_device_mismatch_is_a_clear_error() -> None:
    m = UncertaintyWeighting(2, device="meta")
    assert m.log_var.device.type == "meta"
    with pytest.raises(MtlensError, match="device="):
        m.weighted_loss(torch.ones(2))
