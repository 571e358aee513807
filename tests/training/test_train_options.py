"""The Trainer's optimiser options: SGD with momentum and weight decay, the per-step linear warm-up, the
max_steps budget, their one-line errors, and an exact resume with all of them (issue 15, seed 004 App. 7)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from mtlens.errors import MtlensError
from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.studies import load_study_config
from mtlens.training import TrainConfig, Trainer

BASE = dict(batch_size=16, progress=False, device="cpu", log_every=1)


def _trainer(tiny_data, checkpoint_dir: Path | None = None, **options) -> Trainer:
    ds, tasks, data = tiny_data
    torch.manual_seed(0)
    model = create_model("multi_head", tasks.tasks, ds.image_shape, latent_dim=4, head_hidden=(8,))
    return Trainer(model, create_method("ew", 3), data, TrainConfig(**{**BASE, **options}), checkpoint_dir=checkpoint_dir)


def test_warmup_learning_rate_per_step() -> None:
    cfg = TrainConfig(lr=0.1, warmup_steps=4)
    assert [cfg.lr_at(s) for s in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    assert TrainConfig(lr=0.1).lr_at(0) == 0.1


def test_sgd_momentum_weight_decay_and_warmup_are_the_textbook_update(tiny_data) -> None:
    lr, m, wd = 0.05, 0.9, 1e-3
    t = _trainer(tiny_data, epochs=1, optimizer="sgd", lr=lr, momentum=m, weight_decay=wd, warmup_steps=4)
    assert isinstance(t.optimizer, torch.optim.SGD)
    train = t.data["train"]
    params = [p for p in t.model.parameters()]
    buffers = None
    for step in range(3):
        before = [p.detach().clone() for p in params]
        t.train_step(train.__getitems__(list(range(16 * step, 16 * step + 16))))
        assert t.optimizer.param_groups[0]["lr"] == pytest.approx(lr * (step + 1) / 4)  # 1/4, 2/4, 3/4 of lr
        d = [p.grad + wd * b for p, b in zip(params, before)]  # the step's gradient plus weight decay
        buffers = d if buffers is None else [m * v + g for v, g in zip(buffers, d)]
        for p, b, v in zip(params, before, buffers):
            torch.testing.assert_close(p.detach(), b - lr * (step + 1) / 4 * v, rtol=1e-5, atol=1e-7)


def test_adam_is_the_default_with_its_betas(tiny_data) -> None:
    t = _trainer(tiny_data, epochs=1)
    assert isinstance(t.optimizer, torch.optim.Adam) and t.optimizer.defaults["betas"] == (0.9, 0.999)
    t = _trainer(tiny_data, epochs=1, betas=(0.5, 0.9), weight_decay=0.1)
    assert t.optimizer.defaults["betas"] == (0.5, 0.9) and t.optimizer.defaults["weight_decay"] == 0.1


def test_max_steps_ends_inside_an_epoch(tiny_data) -> None:
    t = _trainer(tiny_data, epochs=5, max_steps=13)  # 154 images / 16 -> 10 steps per epoch
    assert len(t.data["train"]) == 154
    final = t.fit()
    assert t.global_step == 13 and t.epoch == 2 and len(t.history) == 2 and "test/mean_mse" in final
    assert t.config.total_steps(154) == 13 and _trainer(tiny_data, epochs=3).config.total_steps(154) == 30


def test_a_run_continuing_another_runs_step_count_trains_its_whole_budget(tiny_data) -> None:
    """A second stage (a filter trial's) starts global_step where the first ended: its budget and warm-up are its own."""
    t = _trainer(tiny_data, epochs=2, max_steps=13, warmup_steps=4)
    t.global_step = 40
    lrs = []
    t.callbacks = [type("Lr", (), {"on_step": lambda self, step, *a: lrs.append(t.optimizer.param_groups[0]["lr"])})()]
    t.fit()
    assert t.global_step == 53 and t.epoch == 2
    assert lrs[:5] == pytest.approx([t.config.lr * k / 4 for k in (1, 2, 3, 4, 4)])


@pytest.mark.parametrize("options,message", [
    ({"epochs": 3, "max_steps": 31}, "train.max_steps=31 is never reached: 3 epochs of 10 steps are 30"),
    ({"epochs": 2, "warmup_steps": 21}, "train.warmup_steps=21 is longer than the run (20 steps)"),
])
def test_budgets_that_cannot_hold_are_refused(tiny_data, options, message) -> None:
    with pytest.raises(MtlensError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _trainer(tiny_data, **options).fit()


@pytest.mark.parametrize("override,message", [
    ("train.momentum=0.9", "train.momentum is an SGD option; set train.optimizer: sgd"),
    ("train.betas=[0.9, 0.99]", "train.betas is an Adam option"),
    ("train.optimizer=rmsprop", "config key 'train.optimizer'"),
    ("train.momentum=1.5", "config key 'train.momentum'"),
    ("train.warmup_steps=-1", "config key 'train.warmup_steps'"),
])
def test_bad_optimizer_settings_are_one_line(tmp_path: Path, override: str, message: str) -> None:
    sgd = [] if "betas" not in override else ["train.optimizer=sgd"]
    with pytest.raises(MtlensError, match=message) as err:
        load_study_config("balancing/quick", [*sgd, override])
    assert "\n" not in str(err.value)


class Killed(Exception):
    """Stands for a kill between two checkpoints."""


def test_resume_with_sgd_warmup_and_max_steps_is_exact(tiny_data, tmp_path: Path) -> None:
    options = dict(epochs=4, optimizer="sgd", lr=0.05, momentum=0.9, warmup_steps=15, max_steps=25)
    clean = _trainer(tiny_data, **options)
    expected = clean.fit()
    killed = _trainer(tiny_data, tmp_path, **options)
    step = killed.train_step

    def dies_at_13(batch):  # epoch 2 of 3, inside the warm-up; the checkpoint of epoch 1 is at step 10
        if killed.global_step == 13:
            raise Killed
        return step(batch)

    killed.train_step = dies_at_13
    with pytest.raises(Killed):
        killed.fit()
    with pytest.raises(MtlensError, match="trained with train.warmup_steps=15, this run has 10"):
        _trainer(tiny_data, tmp_path, **{**options, "warmup_steps": 10}).fit(resume=True)
    with pytest.raises(MtlensError, match="trained with train.optimizer='sgd', this run has 'adam'"):
        adam = {k: v for k, v in options.items() if k != "momentum"}
        _trainer(tiny_data, tmp_path, **{**adam, "optimizer": "adam"}).fit(resume=True)
    resumed = _trainer(tiny_data, tmp_path, **options)
    assert resumed.fit(resume=True) == expected and resumed.global_step == 25 and resumed.epoch == 3

    def same(a: dict, b: dict) -> bool:
        return {k: v for k, v in a.items() if k != "time/epoch_s"} == {k: v for k, v in b.items() if k != "time/epoch_s"}

    assert len(resumed.history) == 3 and all(same(a, b) for a, b in zip(resumed.history, clean.history))
    for a, b in zip(resumed.model.parameters(), clean.model.parameters()):
        assert torch.equal(a, b)
