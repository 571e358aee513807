"""Every soft-sharing architecture with every method, at each level the method admits: one step, finite
gradients that reach the shared parameters; where an architecture has no shared representation (MTAN) the
feature level is refused in one line."""

from __future__ import annotations

import pytest
import torch

from mtlens import MtlensError
from mtlens.data.tasks import TaskSpec
from mtlens.methods import METHODS, available_methods, create_method
from mtlens.models import create_model
from mtlens.models.soft_registry import ARCHITECTURES

TASKS = [TaskSpec("r0", "regression"), TaskSpec("b", "binary"), TaskSpec("m", "multiclass", 5)]
SMALL = {"mmoe": {"num_experts": 3}, "dselect_k": {"num_experts": 3}}


def _levels(name: str) -> tuple[str, ...]:
    cls = METHODS.get(name)
    return tuple(cls.levels) if getattr(cls, "uses_gradients", False) else ("param",)


def _batch(n: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    targets = torch.stack([torch.randn(n, generator=g), torch.randint(0, 2, (n,), generator=g).float(),
                           torch.randint(0, 5, (n,), generator=g).float()], dim=1)
    return {"x": torch.rand(n, 13, generator=g), "targets": targets}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_method_steps_every_architecture(arch: str) -> None:
    torch.manual_seed(0)
    model = create_model(arch, TASKS, (13,), latent_dim=4, mlp_hidden=(16, 16), head_hidden=(8,), **SMALL.get(arch, {}))
    shared, own = list(model.shared_parameters()), list(model.task_parameters())
    batch = _batch()
    stepped = 0
    for name in available_methods():
        for level in _levels(name):
            method = create_method(name, len(TASKS), level=level)
            model.zero_grad(set_to_none=True)
            losses, cut = model.step_losses(batch)
            if level == "feature" and cut is None:
                with pytest.raises(MtlensError) as err:
                    method.backward(losses, shared, cut, own)
                assert "\n" not in str(err.value) and name in str(err.value), (name, str(err.value))
                continue
            method.backward(losses, shared, cut, own)
            grads = [p.grad for p in shared]
            assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads), (arch, name, level)
            assert any(bool(g.abs().sum() > 0) for g in grads), (arch, name, level)
            assert all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in own), (arch, name, level)
            stepped += 1
    assert stepped >= len(available_methods())
