"""Loss scalarisations and weightings against TorchJD 0.18's scalarizers and LibMTL 1.1.5 (same losses, same
seeds), TorchJD's linear aggregators (Mean, Sum, Constant) against the equivalent loss weightings, and the
methods no installed peer has (MoCo, DB-MTL: LibMTL >= 1.1.6; STCH's warm-up; Auto-Lambda) against their
published update rules written out here step by step."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.methods import create_method

from _refs import libmtl_weighting
from _toy import linear_mtl

scal = pytest.importorskip("torchjd.scalarization")
agg = pytest.importorskip("torchjd.aggregation")

TOL = {"rtol": 0.0, "atol": 1e-6}


def _losses(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3 + 0.1


def _value_and_grad(fn, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    x = losses.clone().requires_grad_(True)
    out = fn(x)
    (g,) = torch.autograd.grad(out, x)
    return out.detach(), g


def _ours(name: str, n: int, **options):  # type: ignore[no-untyped-def]
    method = create_method(name, n, **options)
    return lambda x: method.weighted_loss(x)[0]


@pytest.mark.parametrize("seed", range(3))
def test_scalarisations_equal_torchjd(seed: int) -> None:
    n = 3 + seed
    losses = _losses(n, seed)
    pref = torch.rand(n, generator=torch.Generator().manual_seed(10 + seed), dtype=torch.float64) + 0.1
    ref_point = 0.05 * torch.ones(n, dtype=torch.float64)
    pairs = [
        (_ours("mean", n), scal.Mean()),
        (_ours("ew", n), scal.Sum()),
        (_ours("constant", n, coefficients=pref.tolist()), scal.Constant(pref)),
        (_ours("gls", n), scal.GeometricMean()),
        (_ours("pbi", n, theta=5.0, preference=pref.tolist(), reference=ref_point.tolist()),
         scal.PBI(5.0, pref, ref_point)),
        (_ours("pbi", n), scal.PBI(5.0, torch.ones(n, dtype=torch.float64))),  # defaults: uniform, origin
        (_ours("cosmos", n, lambda_=2.0, preference=pref.tolist()), scal.COSMOS(2.0, pref)),
        (_ours("cosmos", n), scal.COSMOS(2.0, torch.full((n,), 1.0 / n, dtype=torch.float64))),
    ]
    for ours, ref in pairs:
        v1, g1 = _value_and_grad(ours, losses)
        v2, g2 = _value_and_grad(ref, losses)
        torch.testing.assert_close(v1, v2, **TOL)
        torch.testing.assert_close(g1, g2, **TOL)


def test_scalarisation_weights_are_the_slopes() -> None:
    losses = _losses(4, 0)
    for name in ("mean", "gls", "pbi", "cosmos", "constant"):
        method = create_method(name, 4)
        total, weights = method.weighted_loss(losses.clone().requires_grad_(True))
        torch.testing.assert_close(weights, _value_and_grad(lambda x: method.weighted_loss(x)[0], losses)[1])
    # gls: d GM / d L_t = GM / (T L_t)
    gm = float(losses.log().mean().exp())
    torch.testing.assert_close(create_method("gls").weights(losses), gm / (4 * losses))
    with pytest.raises(MtlensError, match="gls: the loss of task 1 is 0.0; the geometric mean needs positive"):
        create_method("gls").weighted_loss(torch.tensor([1.0, 0.0]))


def test_gls_equals_libmtl_on_a_model() -> None:
    shared, heads, losses_of = linear_mtl()
    ref = libmtl_weighting("GLS", 3, list(shared.parameters()))
    ref.backward(losses_of())
    want = [p.grad.clone() for p in [*shared.parameters(), *heads.parameters()]]
    shared.zero_grad(), heads.zero_grad()
    create_method("gls", 3).backward(losses_of(), shared.parameters())
    for p, w in zip([*shared.parameters(), *heads.parameters()], want):
        torch.testing.assert_close(p.grad, w, rtol=1e-6, atol=1e-6)


def _model(n_tasks: int = 3, seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Linear(5, 4), nn.Tanh())
    heads = nn.ModuleList([nn.Linear(4, 1) for _ in range(n_tasks)])
    x, y = torch.randn(16, 5), torch.randn(16, n_tasks)

    def losses_of() -> tuple[torch.Tensor, torch.Tensor]:
        z = enc(x)
        return torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)]), z

    return enc, heads, losses_of


@pytest.mark.parametrize(("ours", "options", "ref"), [
    ("mean", {}, lambda n: agg.Mean()), ("ew", {}, lambda n: agg.Sum()),
    ("constant", {"coefficients": [0.2, 1.5, -0.3]}, lambda n: agg.Constant(torch.tensor([0.2, 1.5, -0.3]))),
])
def test_torchjd_linear_aggregators_equal_the_loss_weightings(ours, options, ref) -> None:  # type: ignore[no-untyped-def]
    # a linear aggregation of the Jacobian is the gradient of the same combination of the losses
    enc, heads, losses_of = _model()
    losses, _ = losses_of()
    jac = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(l, list(enc.parameters()),
                                                                           retain_graph=True)]) for l in losses])
    want = ref(3)(jac)
    create_method(ours, 3, **options).backward(losses, enc.parameters())
    torch.testing.assert_close(torch.cat([p.grad.flatten() for p in enc.parameters()]), want, rtol=1e-6, atol=1e-6)


def test_existing_weightings_equal_torchjd_scalarizers() -> None:
    losses = [_losses(3, s).float() for s in range(5)]
    # UW and IMTL-L at their initial parameters, RLW with the same seed, DWA over epochs, FAMO over steps
    for name, ref in (("uncertainty", scal.UW(3)), ("imtl_l", scal.IMTLL(3))):
        ours = create_method(name, 3)
        for l in losses:
            torch.testing.assert_close(ours.weighted_loss(l)[0], ref(l), **TOL)
    rlw = create_method("rlw", 3, seed=5)
    torch.manual_seed(5)
    ref = scal.Random()
    for l in losses:
        torch.testing.assert_close((rlw.weights(l) * l).sum(), ref(l), **TOL)
    dwa, ref = create_method("dwa", 3), scal.DWA(2.0)
    for epoch in range(4):
        for l in losses[epoch:epoch + 2]:
            torch.testing.assert_close(dwa.weighted_loss(l)[0], ref(l), **TOL)
        dwa.epoch_end(), ref.step()
    famo, ref = create_method("famo", 3, gamma=1e-3), scal.FAMO(3, lr=0.025, weight_decay=1e-3)  # TorchJD's decay
    for l, after in zip(losses, losses[1:]):
        total, _ = famo.weighted_loss(l.clone().requires_grad_(True))
        torch.testing.assert_close(total, ref(l), **TOL)
        famo.after_step(lambda a=after: a)
        ref.update(after)
    torch.testing.assert_close(famo.logits.detach(), ref._w.detach(), **TOL)


def test_stch_warm_up_nadir_and_torchjd() -> None:
    m = create_method("stch", 3, mu=0.5, warmup_epochs=1)
    epochs = [[_losses(3, 10 * e + s) for s in range(3)] for e in range(3)]
    for e, steps in enumerate(epochs):
        for l in steps:
            total, w = m.weighted_loss(l.clone().requires_grad_(True))
            if e <= 1:  # warm-up: the log losses
                torch.testing.assert_close(total, (l + 1e-20).log().sum(), **TOL)
                torch.testing.assert_close(w, 1 / (l + 1e-20), **TOL)
            else:  # T times TorchJD's STCH of the log losses around log(nadir), preference 1
                nadir = torch.stack(epochs[1]).mean(0)
                torch.testing.assert_close(m.nadir, nadir, **TOL)
                ref = scal.STCH(0.5, torch.ones(3, dtype=torch.float64), nadir.log())
                torch.testing.assert_close(total, 3 * ref((l + 1e-20 * nadir).log()), **TOL)
        m.epoch_end()


def test_moco_equals_its_update_rule_and_libmtl_softmax_variant() -> None:
    jacs = [torch.randn(3, 7, generator=torch.Generator().manual_seed(s), dtype=torch.float64) for s in range(4)]
    losses = [_losses(3, 20 + s) for s in range(4)]
    for update in ("projection", "softmax"):
        ours = create_method("moco", 3, weight_update=update)
        y, lam = torch.zeros(3, 7, dtype=torch.float64), torch.full((3,), 1 / 3, dtype=torch.float64)
        for k, (jac, loss) in enumerate(zip(jacs, losses), start=1):
            target = jac / jac.norm(dim=1, keepdim=True) * loss.unsqueeze(1)  # LibMTL: / (|g| + 1e-8)
            y = y - 0.5 / k**0.5 * (y - target)
            step = lam - 0.1 / k**0.5 * (y @ y.T) @ lam
            lam = torch.softmax(step, 0) if update == "softmax" else _simplex(step)
            torch.testing.assert_close(ours.aggregate(jac, loss), y.T @ lam, **TOL)


def _simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the simplex by bisection on the threshold (independent of ours)."""
    lo, hi = float(v.min()) - 1, float(v.max())
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float((v - mid).clamp_min(0).sum()) > 1 else (lo, mid)
    return (v - (lo + hi) / 2).clamp_min(0)


def test_db_mtl_equals_its_update_rule() -> None:
    enc, heads, losses_of = _model()
    ours = create_method("db_mtl", 3, beta=0.9, beta_sigma=0.5)
    average = torch.zeros(3, sum(p.numel() for p in enc.parameters()))
    for k in range(1, 4):
        enc.zero_grad(), heads.zero_grad()
        losses, _ = losses_of()
        logs = (losses + 1e-8).log()
        rows = [torch.cat([g.flatten() for g in torch.autograd.grad(l, list(enc.parameters()), retain_graph=True)])
                for l in logs]
        head_want = torch.autograd.grad(logs.sum(), list(heads.parameters()), retain_graph=True)
        grads = torch.stack(rows)
        average = grads + 0.9 / k**0.5 * (average - grads)
        norms = average.norm(dim=1)
        want = (norms.max() / norms) @ average
        ours.backward(losses, enc.parameters(), None, heads.parameters())
        torch.testing.assert_close(torch.cat([p.grad.flatten() for p in enc.parameters()]), want,
                                   rtol=1e-5, atol=1e-6)
        for p, w in zip(heads.parameters(), head_want):  # the heads train on the log losses
            torch.testing.assert_close(p.grad, w, rtol=1e-5, atol=1e-6)


def test_auto_lambda_equals_the_authors_model_copy_procedure() -> None:
    """The authors' AutoLambda.unrolled_backward, written with a copy of the model (theta') as they do."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y, vx, vy = torch.randn(16, 5), torch.randn(16, 3), torch.randn(16, 5), torch.randn(16, 3)

    def losses(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return ((net(inputs) - targets) ** 2).mean(0)

    ours = create_method("auto_lambda", 3, primary=[0, 2], virtual_lr=0.05, lr=0.01)
    ref_model = copy.deepcopy(model)
    weights = torch.full((3,), 0.1, requires_grad=True)
    meta_opt = torch.optim.Adam([weights], lr=0.01)
    for _ in range(3):
        before = [p.detach().clone() for p in model.parameters()]
        ours.validation_step(lambda: losses(model, vx, vy), lambda: losses(model, x, y), list(model.parameters()))
        assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))  # restored exactly
        # the authors' steps: virtual step into a copy, val gradient there, finite difference at theta +- eps d
        grads = torch.autograd.grad((weights * losses(ref_model, x, y)).sum(), list(ref_model.parameters()))
        shadow = copy.deepcopy(ref_model)
        with torch.no_grad():
            for p, q, g in zip(shadow.parameters(), ref_model.parameters(), grads):
                p.copy_(q - 0.05 * g)
        val = (torch.tensor([1.0, 0.0, 1.0]) * losses(shadow, vx, vy)).sum()
        d = torch.autograd.grad(val, list(shadow.parameters()))
        eps = 0.01 / float(torch.cat([g.flatten() for g in d]).norm())
        with torch.no_grad():
            for p, g in zip(ref_model.parameters(), d):
                p.add_(eps * g)
            plus = losses(ref_model, x, y)
            for p, g in zip(ref_model.parameters(), d):
                p.sub_(2 * eps * g)
            minus = losses(ref_model, x, y)
            for p, g in zip(ref_model.parameters(), d):
                p.add_(eps * g)
        meta_opt.zero_grad()
        weights.grad = -0.05 * (plus - minus) / (2 * eps)
        meta_opt.step()
        torch.testing.assert_close(ours.meta_weights.detach(), weights.detach(), rtol=1e-5, atol=1e-7)
    assert not math.isclose(float(ours.meta_weights.detach()[1]), 0.1)  # moved (through the shared layers)
