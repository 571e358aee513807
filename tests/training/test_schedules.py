import pytest
import torch

from mtlens import MtlensError
from mtlens.data.multitask import MultiTaskDataset
from mtlens.data.tasks import TaskSpec
from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.training import TrainConfig, Trainer
from mtlens.training.schedules import StepDecay


class _Recorder:
    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer, self.rates = optimizer, []

    def on_step(self, step, losses, shared, z):  # type: ignore[no-untyped-def]
        self.rates.append(self.optimizer.param_groups[0]["lr"])


def test_step_decay_halves_the_rate_on_schedule_inside_the_trainer() -> None:
    tasks = [TaskSpec("a", "regression")]
    g = torch.Generator().manual_seed(0)
    data = {s: MultiTaskDataset(torch.randn(12, 5, generator=g), torch.randn(12, 1, generator=g), tasks)
            for s in ("train", "test")}
    model = create_model("multi_head", tasks, (5,), latent_dim=3, head_hidden=(4,), mlp_hidden=(4,))
    schedule = StepDecay(0.01, every_steps=4)
    trainer = Trainer(model, create_method("ew", 1), data, TrainConfig(epochs=4, batch_size=4, device="cpu",
                                                                        progress=False, checkpoint=False),
                      callbacks=[schedule])
    recorder = _Recorder(trainer.optimizer)
    trainer.callbacks = [schedule.bind(trainer.optimizer), recorder]
    trainer.fit()
    assert recorder.rates == [0.01] * 4 + [0.005] * 4 + [0.0025] * 4  # 3 steps per epoch, halved every 4 steps
    assert [schedule.lr_at(s) for s in (0, 3, 4, 8)] == [0.01, 0.01, 0.005, 0.0025]


def test_step_decay_reports_changes_and_refuses_bad_settings() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = StepDecay(1.0, every_steps=2, factor=0.1)
    with pytest.raises(MtlensError, match="not bound"):
        schedule.on_step(0, torch.zeros(1), [], None)
    schedule.bind(opt)
    assert [schedule.on_step(s, torch.zeros(1), [], None) for s in range(4)] == [
        {"train/lr": 1.0}, None, {"train/lr": pytest.approx(0.1)}, None]
    for bad in ({"base_lr": 0.0, "every_steps": 1}, {"base_lr": 1.0, "every_steps": 0},
                {"base_lr": 1.0, "every_steps": 1, "factor": 1.5}):
        with pytest.raises(MtlensError):
            StepDecay(**bad)
