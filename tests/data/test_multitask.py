import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data.multitask import MultiTaskDataset, factor_task_splits, make_loader, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tasks import TaskSpec
from mtlens.data.tiny import TinyShapes


def test_split_is_seeded_disjoint_and_complete() -> None:
    s = split_indices(100, seed=3)
    assert (len(s.train), len(s.val), len(s.test)) == (80, 10, 10)
    allidx = np.concatenate([s.train, s.val, s.test])
    assert sorted(allidx.tolist()) == list(range(100))
    s2 = split_indices(100, seed=3)
    assert all(np.array_equal(s[k], s2[k]) for k in ("train", "val", "test"))
    assert not np.array_equal(split_indices(100, seed=4).train, s.train)
    sub = split_indices(1000, seed=0, subset=50)
    assert len(sub.train) + len(sub.val) + len(sub.test) == 50
    with pytest.raises(MtlensError, match="fractions"):
        split_indices(10, fractions=(0.5, 0.6, 0.1))
    with pytest.raises(MtlensError, match="subset must be between"):
        split_indices(10, subset=11)


def test_factor_task_splits_and_loader() -> None:
    ds = TinyShapes(image_size=32, num_positions=4)
    tasks = RandomMLPTasks.for_dataset(ds, 3, seed=1)
    parts = factor_task_splits(ds, tasks, split_indices(len(ds), seed=0), device="cpu")
    train = parts["train"]
    # standardised on the training split
    torch.testing.assert_close(train.targets.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.targets.std(0), torch.ones(3), atol=1e-5, rtol=0)
    batch = next(iter(make_loader(train, 8, shuffle=True, seed=0)))
    assert batch["x"].shape == (8, 1, 32, 32) and batch["targets"].shape == (8, 3) and batch["factors"].shape == (8, 3)
    # the batch's images and factors are those of its dataset indices
    again = next(iter(make_loader(train, 8, shuffle=True, seed=0)))
    assert torch.equal(batch["x"], again["x"])
    idx = ds.index_of(batch["factors"].numpy())
    assert torch.equal(ds.images(idx), batch["x"])
    single = train[0]
    assert single["x"].shape == (1, 32, 32)


def test_in_memory_dataset_and_bad_targets() -> None:
    tasks = [TaskSpec("a", "regression"), TaskSpec("b", "multiclass", 3)]
    x = torch.randn(5, 4)
    ds = MultiTaskDataset(x, torch.tensor([[0.1, 2], [0.2, 1], [0.3, 0], [0.4, 1], [0.5, 2]]), tasks)
    b = ds.__getitems__([0, 4])
    assert torch.equal(b["x"], x[[0, 4]]) and "factors" not in b
    with pytest.raises(MtlensError, match="task 'b' contain NaN"):
        MultiTaskDataset(x, torch.tensor([[0.0, float("nan")]] * 5), tasks)
    with pytest.raises(MtlensError, match="one column per task"):
        MultiTaskDataset(x, torch.zeros(5, 3), tasks)
