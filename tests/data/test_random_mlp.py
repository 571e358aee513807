import math

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tiny import TinyShapes


@pytest.fixture(scope="module")
def z() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 2, size=(2000, 4))


def test_targets_reproducible_from_the_seed(z) -> None:
    a = RandomMLPTasks(4, 5, seed=7).raw(z)
    b = RandomMLPTasks(4, 5, seed=7).raw(z)
    assert torch.equal(a, b)
    assert not torch.allclose(a, RandomMLPTasks(4, 5, seed=8).raw(z))
    # task i is the same network whatever the number of tasks
    torch.testing.assert_close(RandomMLPTasks(4, 3, seed=7).raw(z), a[:, :3])


def test_architecture_and_initialisation() -> None:
    t = RandomMLPTasks(6, 10, seed=0)
    assert [tuple(w.shape) for w, _ in t.layers] == [(10, 6, 300), (10, 300, 300), (10, 300, 300), (10, 300, 300), (10, 300, 1)]
    w = torch.cat([w.flatten() for w, _ in t.layers])
    assert abs(w.mean().item()) < 0.01 and abs(w.std().item() - 1) < 0.01  # N(0, 1) weights
    for (w, b), fan_in in zip(t.layers, (6, 300, 300, 300, 300)):
        assert b.abs().max().item() <= 1 / math.sqrt(fan_in)  # PyTorch's default Linear bias init


def test_forward_is_the_tanh_mlp(z) -> None:
    t = RandomMLPTasks(4, 2, seed=1)
    h = torch.as_tensor(z, dtype=torch.float32)
    for i, (w, b) in enumerate(t.layers):
        h = h @ w[1] + b[1, 0]
        if i < 4:
            h = torch.tanh(h)
    torch.testing.assert_close(t.raw(z, batch_size=333)[:, 1], h[:, 0], rtol=1e-5, atol=1e-4)


def test_standardised_on_the_training_split(z) -> None:
    t = RandomMLPTasks(4, 5, seed=0)
    raw = t.raw(z)
    assert 5 < float(raw.std(0).mean()) < 30  # the raw outputs' scale the seed reports (std ~10-20)
    t.fit(z[:1000])
    y = t(z)
    torch.testing.assert_close(y[:1000].mean(0), torch.zeros(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(y[:1000].std(0), torch.ones(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(y, (raw - raw[:1000].mean(0)) / raw[:1000].std(0), atol=1e-4, rtol=1e-4)
    off = RandomMLPTasks(4, 5, seed=0, standardize=False)
    assert torch.equal(off(z), raw)
    with pytest.raises(MtlensError, match="call fit"):
        RandomMLPTasks(4, 5, seed=0)(z)


def test_unit_inputs_scale_factor_values_to_0_1() -> None:
    ds = TinyShapes(image_size=16, num_positions=4)
    idx = np.arange(len(ds))
    phys = RandomMLPTasks.for_dataset(ds, 2, seed=0, standardize=False)
    unit = RandomMLPTasks.for_dataset(ds, 2, seed=0, standardize=False, inputs="unit")
    v = ds.factor_values(idx)
    scaled = (v - v.min(0)) / (v.max(0) - v.min(0))
    torch.testing.assert_close(unit(v), phys(scaled))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"n_tasks": 0}, "n_tasks must be >= 1"), ({"inputs": "raw"}, "unknown inputs 'raw'"),
     # one check of the task count everywhere: no raw TypeError, no bool taken for one task
     ({"n_tasks": 2.5}, "n_tasks must be >= 1, a whole number; got 2.5"), ({"n_tasks": "3"}, "got '3'"),
     ({"n_tasks": True}, "got True"),
     ({"inputs": "unit"}, "needs value_ranges")],
)
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(MtlensError, match=message):
        RandomMLPTasks(3, **{"n_tasks": 2, **kwargs})


def test_bad_factor_values() -> None:
    t = RandomMLPTasks(3, 2, seed=0, standardize=False)
    with pytest.raises(MtlensError, match=r"must be \[N, 3\]"):
        t(np.zeros((4, 2)))
    with pytest.raises(MtlensError, match="NaN or inf"):
        t(np.full((4, 3), np.nan))
