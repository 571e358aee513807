"""Reference implementations set up for the gradient-method tests: LibMTL 1.1.5 on fixed Jacobians.

A shared parameter theta (zeros) with losses L_t = J_t . theta + c_t has exactly the Jacobian J and the loss
values c, so LibMTL's weightings (which compute gradients themselves) see the same inputs as ours.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch


def stub_torchvision() -> None:
    """Puts a stand-in torchvision in sys.modules: LibMTL 1.1.5 imports it only for ResNet URLs."""
    if "torchvision" in sys.modules:
        return
    tv, models, utils = (types.ModuleType(n) for n in ("torchvision", "torchvision.models", "torchvision.models.utils"))
    utils.load_state_dict_from_url = lambda *a, **k: None  # type: ignore[attr-defined]
    tv.models, models.utils = models, utils  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": tv, "torchvision.models": models, "torchvision.models.utils": utils})


def libmtl_weighting(name: str, n_tasks: int, shared=None, rep_grad: bool = False, epoch: int = 0,  # type: ignore[no-untyped-def]
                     loss_buffer=None):
    """Returns LibMTL's weighting class `name` instantiated outside its Trainer, on the CPU."""
    stub_torchvision()
    weighting = pytest.importorskip("LibMTL.weighting")
    shared = list(shared or [])

    class _Ref(getattr(weighting, name)):  # type: ignore[misc]
        def get_share_params(self):  # type: ignore[no-untyped-def]
            return shared

        def zero_grad_share_params(self) -> None:
            # LibMTL assigns param.grad.data after zeroing, so the grads must be zeros, not None (torch >= 2).
            for p in shared:
                p.grad = torch.zeros_like(p)

    ref = _Ref()
    ref.task_num, ref.device, ref.rep_grad, ref.epoch = n_tasks, torch.device("cpu"), rep_grad, epoch
    ref.train_loss_buffer = loss_buffer
    ref.task_name = [f"t{i}" for i in range(n_tasks)]
    ref.init_param()
    return ref


def libmtl_on_jacobian(name: str, jacobian: torch.Tensor, loss_values: torch.Tensor | None = None, **kwargs):  # type: ignore[no-untyped-def]
    """Returns (LibMTL's update direction [P], its returned weights) for a fixed Jacobian and loss values."""
    n_tasks, dim = jacobian.shape
    theta = torch.zeros(dim, requires_grad=True)
    ref = libmtl_weighting(name, n_tasks, [theta])
    c = torch.ones(n_tasks) if loss_values is None else loss_values
    losses = torch.stack([jacobian[t] @ theta + c[t] for t in range(n_tasks)])
    weights = ref.backward(losses, **kwargs)
    return theta.grad.detach().clone(), weights
