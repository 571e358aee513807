"""The method life cycle: the README's own loop moves every method's state exactly as the Trainer does, the
Trainer calls the life cycle and nothing else, the no-op defaults, and device="auto" (one resolver)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from mtlens import MtlensError
from mtlens.data.multitask import factor_task_splits, make_loader, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tiny import TinyShapes
from mtlens.methods import METHODS, Method, available_methods, create_method
from mtlens.methods.base import LossWeighting
from mtlens.methods.options import rules_of
from mtlens.models import create_model
from mtlens.training import TrainConfig, Trainer

EPOCHS = 3  # DWA's weights leave 1 only in the third epoch


def _setup(name: str, level: str = "param") -> tuple[Any, Method, dict]:
    ds = TinyShapes(image_size=16, num_positions=8)  # 192 images: 153 train, 3 batches of 64 per epoch
    n = max(3, getattr(create_method(name, 3), "min_rows", 3))  # Krum's definition needs 4 tasks
    tasks = RandomMLPTasks.for_dataset(ds, n_tasks=n, seed=0, hidden=(16,))
    data = factor_task_splits(ds, tasks, split_indices(len(ds), seed=0), device="cpu")
    torch.manual_seed(0)
    model = create_model("multi_head", tasks.tasks, ds.image_shape, mlp_hidden=(16,), head_hidden=(8,))
    return model, create_method(name, n_tasks=n, level=level), data


def readme_loop(model: Any, method: Method, data: dict) -> None:
    """The loop of README.md ("The parts in your own loop"), line for line."""
    opt = torch.optim.Adam([*model.parameters(), *method.parameters()], lr=1e-3)
    val_batches = (b for n in itertools.count() for b in make_loader(data["val"], 64, shuffle=True, seed=n))
    for epoch in range(3):
        for batch in make_loader(data["train"], 64, shuffle=True, seed=epoch):
            if method.needs_validation_batch:  # Auto-Lambda: before the forward pass, a validation batch
                val = next(val_batches)
                method.validation_step(lambda: model.step_losses(val)[0], lambda: model.step_losses(batch)[0],
                                       list(model.parameters()))
            opt.zero_grad()
            losses, z = model.step_losses(batch)
            method.backward(losses, model.shared_parameters(), z, model.task_parameters())
            opt.step()
            method.after_step(lambda: model.step_losses(batch)[0])
        method.epoch_end()


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{prefix}/{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{prefix}/{i}")
    else:
        yield prefix, value


def _assert_same_state(a: dict, b: dict) -> None:
    la, lb = dict(_leaves(a)), dict(_leaves(b))
    assert la.keys() == lb.keys()
    for key in la:
        if isinstance(la[key], torch.Tensor) or isinstance(lb[key], torch.Tensor):
            assert isinstance(la[key], torch.Tensor) and isinstance(lb[key], torch.Tensor), key
            assert torch.equal(la[key], lb[key]), key
        else:
            assert la[key] == lb[key], key


def _moved(before: dict, after: dict) -> list[str]:
    """Returns the state entries (beyond the step counter and generators) whose values changed."""
    lb, la = dict(_leaves(before)), dict(_leaves(after))
    out = []
    for key, value in la.items():
        if key in ("/step", "/rng_state"):
            continue
        if key not in lb:  # a new entry (DWA's history of epoch averages)
            out.append(key)
            continue
        old = lb[key]
        if isinstance(value, torch.Tensor) and isinstance(old, torch.Tensor):
            same = old.shape == value.shape and torch.equal(old, value)
        else:  # a buffer made at the first step (None before), or a number
            same = type(old) is type(value) and old == value
        if not same:
            out.append(key)
    return out


#: Every method at level "param", and those that take per-task gradients also at level "feature".
RUNS = [(n, "param") for n in available_methods()] + [
    (n, "feature") for n in available_methods() if METHODS.get(n).uses_gradients and "feature" in METHODS.get(n).levels
]


@pytest.mark.parametrize(("name", "level"), RUNS)
def test_readme_loop_moves_the_method_as_the_trainer_does(name: str, level: str) -> None:
    model, method, data = _setup(name, level)
    initial = copy.deepcopy(method.state_dict())
    readme_loop(model, method, data)

    t_model, t_method, t_data = _setup(name, level)
    config = TrainConfig(epochs=EPOCHS, batch_size=64, lr=1e-3, seed=0, device="cpu", progress=False, checkpoint=False)
    Trainer(t_model, t_method, t_data, config).fit()

    for (k, a), (_, b) in zip(model.state_dict().items(), t_model.state_dict().items()):
        assert torch.equal(a, b), f"{name}: model weight {k} differs from the Trainer's"
    _assert_same_state(method.state_dict(), t_method.state_dict())
    assert method.step == EPOCHS * 3
    # the loop is not vacuous: every method with per-task state has moved it (DWA's history, FAMO's logits,
    # the learnable weights of uncertainty / GradNorm / IMTL-L / IMTL, GradVac's targets, Nash-MTL's weights)
    if type(method).per_task_state:
        assert _moved(initial, method.state_dict()), f"{name}: its state did not move"
    for p, p0 in zip(method.parameters(), _setup(name, level)[1].parameters()):
        assert not torch.equal(p.detach(), p0.detach()), f"{name}: the optimiser never moved its parameters"


def test_dwa_and_famo_state_in_the_readme_loop() -> None:
    model, dwa, data = _setup("dwa")
    readme_loop(model, dwa, data)
    assert len(dwa.history) == 3
    assert not torch.equal(dwa.weights(torch.ones(3)), torch.ones(3))  # stuck at 1 without epoch_end
    model, famo, data = _setup("famo")
    readme_loop(model, famo, data)
    assert bool((famo.logits.detach() != 0).all())  # never updated without after_step


class _Recording(LossWeighting):
    """Equal weighting that records every life-cycle call the Trainer makes."""

    name = "recording"

    def __init__(self, n_tasks: int) -> None:
        super().__init__(n_tasks)
        self.calls: list[str] = []
        self.weight = torch.nn.Parameter(torch.ones(()))

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(losses)

    def backward(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        self.calls.append("backward")
        return super().backward(*args, **kwargs)

    def _move(self, device: torch.device) -> None:
        self.calls.append(f"to:{device}")

    def parameters(self) -> list[torch.Tensor]:
        self.calls.append("parameters")
        return [self.weight]

    def after_step(self, losses_after: Any) -> None:
        self.calls.append(f"after_step:{tuple(losses_after().shape)}")

    def epoch_end(self) -> None:
        self.calls.append("epoch_end")


def test_the_trainer_calls_the_life_cycle_in_order() -> None:
    model, _, data = _setup("ew")
    method = _Recording(3)
    trainer = Trainer(model, method, data, TrainConfig(epochs=2, batch_size=64, device="cpu", progress=False,
                                                       checkpoint=False))
    assert any(p is method.weight for g in trainer.optimizer.param_groups for p in g["params"])
    trainer.fit()
    step = ["backward", "after_step:(3,)"]
    assert method.calls == ["to:cpu", "parameters"] + (step * 3 + ["epoch_end"]) * 2


@pytest.mark.parametrize("name", available_methods())
def test_every_method_has_the_whole_life_cycle_with_defaults(name: str) -> None:
    method = create_method(name, 3)
    assert method.to("cpu") is method
    assert isinstance(method.parameters(), list)
    calls = []
    if name != "famo":  # the others do not need the losses after the step, so they never compute them
        method.after_step(lambda: calls.append(1))
        assert calls == []
    if name != "dwa":
        method.epoch_end()
    method.load_state_dict(method.state_dict())


@pytest.mark.parametrize("name", [n for n in available_methods() if "device" in rules_of(METHODS.get(n))])
def test_device_auto_resolves_with_the_one_resolver(name: str) -> None:
    # before: torch.device("auto") raised a raw RuntimeError in the loss-weighting methods
    want = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    method = create_method(name, 2, device="auto")
    assert method.device.type == want.type
    assert all(p.device.type == want.type for p in method.parameters())
    assert create_method(name, 2).to("auto").device.type == want.type
    with pytest.raises(MtlensError, match="device"):
        create_method(name, 2, device="gpu")
    with pytest.raises(MtlensError, match="unknown device 'gpu'"):
        create_method(name, 2).to("gpu")


def test_a_method_that_needs_a_validation_batch_refuses_data_without_one() -> None:
    model, method, data = _setup("auto_lambda")
    config = TrainConfig(epochs=1, batch_size=64, device="cpu", progress=False, checkpoint=False)
    without = {k: v for k, v in data.items() if k != "val"}
    with pytest.raises(MtlensError, match=r"method auto_lambda needs a validation batch every step; the data has no "
                                          r"'val' split \(got \['test', 'train'\]\): give it one"):
        Trainer(model, method, without, config)
    Trainer(model, create_method("ew", 3), without, config)  # the others need none


def test_validation_batches_follow_the_global_step_so_a_resumed_run_draws_the_same() -> None:
    model, method, data = _setup("auto_lambda")
    config = TrainConfig(epochs=1, batch_size=64, device="cpu", progress=False, checkpoint=False)
    trainer = Trainer(model, method, data, config)
    drawn = []
    for step in range(5):  # 19 val items in batches of 64: one batch per pass, reshuffled every pass
        trainer.global_step = step
        drawn.append(trainer._validation_batch())
    resumed = Trainer(*_setup("auto_lambda")[:1], create_method("auto_lambda", 3), data, config)
    resumed.global_step = 3
    again = resumed._validation_batch()
    assert all(torch.equal(a, b) for a, b in zip(_leaves_of(drawn[3]), _leaves_of(again)))
    assert not all(torch.equal(a, b) for a, b in zip(_leaves_of(drawn[3]), _leaves_of(drawn[4])))  # reshuffled


def _leaves_of(batch: Any) -> list[torch.Tensor]:
    return [v for _, v in _leaves(batch)]
