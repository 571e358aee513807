import pytest
import torch

from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.runs import RunStore
from mtlens.training import NonFiniteLoss, TrainConfig, Trainer
from mtlens.models.losses import task_losses


def _trainer(tiny_data, arch="multi_head", epochs=2, **kw):
    ds, tasks, data = tiny_data
    torch.manual_seed(0)
    model = create_model(arch, tasks.tasks, ds.image_shape, **kw)
    method = create_method("ew", len(model.active_tasks))
    return Trainer(model, method, data, TrainConfig(epochs=epochs, batch_size=16, progress=False, device="cpu", log_every=2))


def test_training_lowers_the_loss(tiny_data) -> None:
    t = _trainer(tiny_data, epochs=3)
    batch = t.data["train"].__getitems__(list(range(len(t.data["train"]))))
    def full_loss():
        with torch.no_grad():
            return task_losses(t.model.tasks, t.model(batch["x"]), batch["targets"], (0, 1, 2)).sum().item()
    before = full_loss()
    final = t.fit()
    assert full_loss() < 0.9 * before
    assert set(final) == {"test/task_0/mse", "test/task_1/mse", "test/task_2/mse", "test/mean_mse"}


def test_single_task_model_other_heads_receive_no_gradient(tiny_data) -> None:
    t = _trainer(tiny_data, arch="single_task", task=1)
    heads_before = [[p.detach().clone() for p in h.parameters()] for h in t.model.heads]
    t.train_step(t.data["train"].__getitems__(list(range(16))))
    for i, h in enumerate(t.model.heads):
        grads = [p.grad for p in h.parameters()]
        changed = any(not torch.equal(a, b) for a, b in zip(heads_before[i], h.parameters()))
        if i == 1:
            assert all(g is not None and g.abs().sum() > 0 for g in grads) and changed
        else:
            assert all(g is None for g in grads) and not changed


def test_random_encoder_stays_at_initialisation(tiny_data) -> None:
    t = _trainer(tiny_data, arch="random", epochs=1)
    enc_before = [p.clone() for p in t.model.encoder.parameters()]
    t.fit()
    assert all(torch.equal(a, b) for a, b in zip(enc_before, t.model.encoder.parameters()))


def test_same_seed_same_numbers(tiny_data) -> None:
    a = _trainer(tiny_data, epochs=1).fit()
    b = _trainer(tiny_data, epochs=1).fit()
    assert a == b


def test_nan_loss_marks_the_run_failed_and_keeps_the_store_consistent(tiny_data, tmp_path) -> None:
    t = _trainer(tiny_data, epochs=2)
    store = RunStore(tmp_path / "s.sqlite")
    run_id = store.create_run("unit", {"a": 1}, 0)
    store.start(run_id)
    t.store, t.run_id = store, run_id
    with torch.no_grad():
        t.model.heads[2].net[0].weight.fill_(float("inf"))  # task_2 diverges at the first step
    with pytest.raises(NonFiniteLoss, match="non-finite loss at step"):
        t.fit()
    run = store.get_run(run_id)
    assert run.status == "failed" and "task(s) task_2" in run.error and run.error_step == t.global_step == 0
    assert all(m.step <= t.global_step for m in store.metrics(run_id))
