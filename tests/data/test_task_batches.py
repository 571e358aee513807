"""Per-task batches: a random batch of every task per step, evaluation covering each sample once."""

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data.multitask import MultiTaskDataset, make_loader
from mtlens.data.task_batches import AlignedTaskBatches, RandomTaskBatches, task_batch_splits
from mtlens.data.task_groups import TaskGroupData
from mtlens.data.base import Source
from mtlens.data.tasks import TaskSpec


def _group(sizes=(5, 9, 3)) -> TaskGroupData:
    specs, parts = [], []
    for t, n in enumerate(sizes):
        spec = TaskSpec(f"t{t}", "multiclass", 3)
        # sample i of task t has input value 100 t + i, so batches reveal which samples they hold
        x = (100 * t + torch.arange(n, dtype=torch.float32))[:, None].repeat(1, t + 2).to(torch.uint8 if t == 2 else torch.float32)
        specs.append(spec)
        parts.append(MultiTaskDataset(x, torch.arange(n, dtype=torch.float32)[:, None] % 3, (spec,)))
    return TaskGroupData("toy", tuple(specs), tuple(parts), tuple(parts), tuple((t + 2,) for t in range(len(sizes))),
                         Source("stand-in", "test"))


def test_random_batches_hold_one_batch_of_every_task() -> None:
    data = _group()
    loader = make_loader(RandomTaskBatches(data.train, 4 * 7), 7, shuffle=True, seed=0)
    torch.manual_seed(1)
    batches = list(loader)
    assert len(batches) == 4
    for b in batches:
        assert [tuple(x.shape) for x in b["x"]] == [(7, 2), (7, 3), (7, 4)]
        assert all(x.dtype == torch.float32 for x in b["x"])  # uint8 inputs become float32
        assert [tuple(y.shape) for y in b["targets"]] == [(7,)] * 3
        for t, (x, y) in enumerate(zip(b["x"], b["targets"])):
            idx = x[:, 0] - 100 * t
            assert torch.equal(y, idx % 3)  # inputs and targets stay paired
    torch.manual_seed(1)
    again = list(make_loader(RandomTaskBatches(data.train, 4 * 7), 7, shuffle=True, seed=0))
    assert all(torch.equal(a, b) for p, q in zip(batches, again) for a, b in zip(p["x"], q["x"]))


def test_tasks_of_one_shape_come_stacked() -> None:
    data = _group()
    parts = [MultiTaskDataset(torch.full((n, 2, 3), float(t)), torch.full((n, 1), float(t)), d.tasks)
             for t, (n, d) in enumerate(zip((5, 9, 3), data.train))]
    torch.manual_seed(0)
    batch = RandomTaskBatches(parts, 6).__getitems__(list(range(6)))
    assert batch["x"].shape == (3, 6, 2, 3) and batch["targets"].shape == (3, 6)
    assert torch.equal(batch["x"][:, :, 0, 0], batch["targets"])  # each task's rows came from that task
    assert torch.equal(batch["targets"][:, 0], torch.tensor([0.0, 1.0, 2.0]))


def test_aligned_batches_cover_every_sample_once() -> None:
    data = _group()
    seen = [[] for _ in range(3)]
    for b in make_loader(AlignedTaskBatches(data.test), 4):
        for t, x in enumerate(b["x"]):
            seen[t] += (x[:, 0] - 100 * t).long().tolist()
    assert [sorted(s) for s in seen] == [list(range(5)), list(range(9)), list(range(3))]


def test_splits_and_bad_input() -> None:
    data = _group()
    splits = task_batch_splits(data, batch_size=8, steps_per_epoch=5, eval_split="train")
    assert len(splits["train"]) == 40 and len(splits["test"]) == 9
    with pytest.raises(MtlensError, match="eval_split must be 'train' or 'test', got 'val'"):
        task_batch_splits(data, 8, 5, eval_split="val")
    with pytest.raises(MtlensError, match="batch_size .* >= 1, got 0"):
        task_batch_splits(data, 0, 5)
    with pytest.raises(MtlensError, match="length .* >= 1, got 0"):
        RandomTaskBatches(data.train, 0)
    empty = MultiTaskDataset(torch.zeros(0, 2), torch.zeros(0, 1), (TaskSpec("e", "binary"),))
    with pytest.raises(MtlensError, match="task 'e' has no samples"):
        AlignedTaskBatches([empty])
    assert np.isclose(len(splits["train"]) / 8, 5)
