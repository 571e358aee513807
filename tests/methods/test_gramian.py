"""The `gramian=True` path of the Gram-based aggregators: J J^T without the [T, P] Jacobian, then one backward
pass of the weighted losses, gives the materialised path's gradients (shared and task-specific parameters), with
and without the representation to chain through."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.methods import METHODS, available_methods, create_method, shared_jacobian
from mtlens.methods._common import GramAggregator
from mtlens.methods.gradients import shared_gramian

GRAM_METHODS = [n for n in available_methods() if issubclass(METHODS.get(n), GramAggregator)]


def _model(n_tasks: int, seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5 * 5, 6),
                        nn.Tanh())
    heads = nn.ModuleList([nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1)) for _ in range(n_tasks)])
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 1, 7, 7, generator=gen), torch.randn(8, n_tasks, generator=gen)

    def losses_of() -> tuple[torch.Tensor, torch.Tensor]:
        z = enc(x)
        return torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)]) + 0.1, z

    return enc, heads, losses_of


def test_shared_gramian_is_j_jt_without_and_with_the_representation() -> None:
    enc, heads, losses_of = _model(4)
    losses, z = losses_of()
    jac = shared_jacobian(losses, list(enc.parameters()), z).double()
    for rep in (None, z):
        torch.testing.assert_close(shared_gramian(losses, list(enc.parameters()), rep), jac @ jac.T,
                                   rtol=1e-5, atol=1e-6 * float((jac @ jac.T).abs().max()))
    frozen = nn.Linear(2, 2)  # a parameter the losses do not use contributes nothing
    torch.testing.assert_close(shared_gramian(losses, [*enc.parameters(), frozen.weight], None), jac @ jac.T,
                               rtol=1e-5, atol=1e-6 * float((jac @ jac.T).abs().max()))


@pytest.mark.parametrize("chain", [True, False])
@pytest.mark.parametrize("name", GRAM_METHODS)
def test_the_gramian_path_gives_the_materialised_gradients(name: str, chain: bool) -> None:
    n = 4
    grads = []
    for gramian in (False, True):
        enc, heads, losses_of = _model(n)
        method = create_method(name, n, gramian=gramian)
        for _ in range(2):  # two steps: stateful methods use their state in the second
            enc.zero_grad(), heads.zero_grad()
            losses, z = losses_of()
            weights = method.backward(losses, enc.parameters(), z if chain else None, heads.parameters())
        flat = torch.cat([p.grad.flatten() for p in [*enc.parameters(), *heads.parameters()]])
        grads.append((flat, weights))
    (materialised, w_m), (streamed, w_s) = grads
    # G from autograd vs J J^T from the float32 Jacobian: equal to float32 rounding, which the solvers carry over
    torch.testing.assert_close(streamed, materialised, rtol=1e-3, atol=1e-4 * float(materialised.abs().max()))
    torch.testing.assert_close(w_s, w_m, rtol=1e-3, atol=1e-4 * float(w_m.abs().max()))


def test_the_gramian_path_is_the_only_difference_and_feature_level_ignores_it() -> None:
    enc, heads, losses_of = _model(3)
    losses, z = losses_of()
    create_method("upgrad", gramian=True, level="feature").backward(losses, enc.parameters(), z, heads.parameters())
    feature = [p.grad.clone() for p in enc.parameters()]
    enc.zero_grad(), heads.zero_grad()
    losses, z = losses_of()
    create_method("upgrad", level="feature").backward(losses, enc.parameters(), z, heads.parameters())
    torch.testing.assert_close(torch.cat([a.flatten() for a in feature]),
                               torch.cat([p.grad.flatten() for p in enc.parameters()]))
    enc.zero_grad()
    losses, _ = losses_of()
    bad = torch.stack([losses[0], losses[1] * float("nan"), losses[2]])
    with pytest.raises(MtlensError, match="upgrad: the gradient of task 1 contains NaN"):
        create_method("upgrad", gramian=True).backward(bad, enc.parameters(), None, heads.parameters())
    with pytest.raises(MtlensError, match="krum: .*needs at least 3 task gradients"):
        create_method("krum", gramian=True).backward(losses[:2], enc.parameters(), None, heads.parameters())
